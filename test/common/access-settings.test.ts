import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { hashPassword, isPasswordHash, normaliseSshKeys, validateSshPublicKey } from "../../common/access-settings";

let root: string;
/** Real keys from ssh-keygen, by name. */
const keys: Record<string, string> = {};

function keygen(name: string, args: string[]): void {
  const file = path.join(root, name);
  execFileSync("ssh-keygen", ["-q", "-N", "", "-C", `${name}@test`, "-f", file, ...args]);
  keys[name] = readFileSync(`${file}.pub`, "utf8").trim();
}

/** SSH wire string: uint32 length, bytes. */
function wire(...fields: Buffer[]): Buffer {
  return Buffer.concat(fields.flatMap((f) => [Buffer.from([0, 0, 0, 0].map((_, i) => (f.length >>> (24 - 8 * i)) & 0xff)), f]));
}

/** A FIDO key as OpenSSH writes it (PROTOCOL.u2f): no authenticator needed to make one. */
function skEd25519Key(): string {
  const type = "sk-ssh-ed25519@openssh.com";
  return `${type} ${wire(Buffer.from(type), Buffer.alloc(32, 7), Buffer.from("ssh:")).toString("base64")} yubikey`;
}

function skEcdsaKey(): string {
  const type = "sk-ecdsa-sha2-nistp256@openssh.com";
  const point = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 9)]);
  return `${type} ${wire(Buffer.from(type), Buffer.from("nistp256"), point, Buffer.from("ssh:")).toString("base64")}`;
}

const rejected = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err as { type?: string; message: string };
  }
  throw new Error("expected a validation failure");
};

beforeAll(() => {
  mkdirSync(path.join(__dirname, "../../.data"), { recursive: true });
  root = mkdtempSync(path.join(__dirname, "../../.data/test-images-access-"));
  keygen("ed25519", ["-t", "ed25519"]);
  keygen("rsa", ["-t", "rsa", "-b", "3072"]);
  keygen("rsa1024", ["-t", "rsa", "-b", "1024"]);
  keygen("ecdsa256", ["-t", "ecdsa", "-b", "256"]);
  keygen("ecdsa384", ["-t", "ecdsa", "-b", "384"]);
  keygen("ecdsa521", ["-t", "ecdsa", "-b", "521"]);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("validateSshPublicKey", () => {
  test.each(["ed25519", "rsa", "ecdsa256", "ecdsa384", "ecdsa521"])("accepts an ssh-keygen %s key", (name) => {
    const key = validateSshPublicKey(keys[name] as string);
    expect(key.line).toBe(keys[name]);
    expect(key.comment).toBe(`${name}@test`);
  });

  test("accepts FIDO keys and keys without a comment; normalises spacing", () => {
    expect(validateSshPublicKey(skEd25519Key()).type).toBe("sk-ssh-ed25519@openssh.com");
    expect(validateSshPublicKey(skEcdsaKey()).comment).toBeUndefined();
    const [type, body] = (keys.ed25519 as string).split(" ");
    expect(validateSshPublicKey(`  ${type}\t ${body}   my  laptop  `).line).toBe(`${type} ${body} my  laptop`);
  });

  test("rejects unsupported types, bad base64, a mismatched embedded type and truncation", () => {
    const [, edBody = ""] = (keys.ed25519 as string).split(" ");
    const [, rsaBody = ""] = (keys.rsa as string).split(" ");
    const cases: Array<[string, RegExp]> = [
      [`ssh-dss ${edBody}`, /not supported/],
      ["ssh-ed25519 AAAA$$$$", /base64/],
      [`ssh-ed25519 ${edBody.slice(0, -1)}`, /base64/],
      [`ssh-rsa ${edBody} mislabelled`, /declared ssh-rsa but its blob is "ssh-ed25519"/],
      [`ecdsa-sha2-nistp384 ${(keys.ecdsa256 as string).split(" ")[1]}`, /declared ecdsa-sha2-nistp384/],
      [`ssh-ed25519 ${Buffer.from(Buffer.from(edBody, "base64").subarray(0, 40)).toString("base64")}`, /truncated/],
      [`ssh-rsa ${Buffer.concat([Buffer.from(rsaBody, "base64"), wire(Buffer.from("x"))]).toString("base64")}`, /trailing data/],
      [keys.rsa1024 as string, /1024 bits/],
      [`${keys.ed25519}\nssh-ed25519 ${edBody}`, /single line/],
      ["ssh-ed25519", /look like/],
    ];
    for (const [key, message] of cases) {
      const err = rejected(() => validateSshPublicKey(key));
      expect(err.type).toBe("VALIDATION_FAILED");
      expect(err.message).toMatch(message);
    }
  });
});

describe("normaliseSshKeys", () => {
  test("returns normalised lines and refuses the same key twice, comments aside", () => {
    expect(normaliseSshKeys([keys.ed25519 as string, keys.rsa as string])).toEqual([keys.ed25519, keys.rsa]);
    const [type, body] = (keys.ed25519 as string).split(" ");
    const err = rejected(() => normaliseSshKeys([keys.rsa as string, keys.ed25519 as string, `${type} ${body} other comment`]));
    expect(err).toMatchObject({ type: "VALIDATION_FAILED", message: "SSH key 3 is the same ssh-ed25519 key as key 2" });
    expect(rejected(() => normaliseSshKeys(["nope"])).message).toMatch(/^SSH key 1: /);
  });
});

describe("hashPassword", () => {
  test.each(["correct horse battery staple", "päss wörd €", "x", "a".repeat(200)])("matches openssl passwd -6 for %j", (password) => {
    const hash = hashPassword(password);
    expect(isPasswordHash(hash)).toBe(true);
    const salt = hash.split("$")[2] as string;
    expect(salt).toHaveLength(16);
    const openssl = execFileSync("openssl", ["passwd", "-6", "-salt", salt, "-stdin"], { input: password, encoding: "utf8" }).trim();
    expect(hash).toBe(openssl);
  });

  test("salts every hash afresh and refuses empty passwords", () => {
    expect(hashPassword("same")).not.toBe(hashPassword("same"));
    expect(rejected(() => hashPassword("")).type).toBe("VALIDATION_FAILED");
  });

  test("isPasswordHash tells crypt hashes from anything else", () => {
    const openssl = execFileSync("openssl", ["passwd", "-5", "-stdin"], { input: "pw", encoding: "utf8" }).trim();
    expect(isPasswordHash(openssl)).toBe(true);
    for (const value of ["plain password", "$1$abc$defghijklmnopqrstuv", "$6$salt$short", `${hashPassword("x")}\nroot::0:0`]) {
      expect(isPasswordHash(value)).toBe(false);
    }
  });
});
