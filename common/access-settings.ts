import { createHash, randomInt } from "node:crypto";
import { permanentFailure } from "./errors";

/**
 * Checks and normalises what a guest's login is configured with: SSH public keys and a password,
 * which only ever leaves the API as a SHA-512 crypt hash (what cloud-init's chpasswd takes with
 * `type: hash`). Pure: no I/O, so the API validates requests with it directly.
 */

const invalid = (message: string) => permanentFailure("VALIDATION_FAILED", message);

// ---------------------------------------------------------------------------------------------
// SSH public keys

export const SSH_KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
] as const;

export type SshKeyType = (typeof SSH_KEY_TYPES)[number];

export interface SshPublicKey {
  type: SshKeyType;
  /** The base64 key blob. */
  body: string;
  comment?: string;
  /** `type body [comment]` with single spaces: what goes into authorized_keys. */
  line: string;
}

const MAX_KEY_LINE = 16 * 1024;
const MIN_RSA_BITS = 2048;
/** Uncompressed EC point sizes (0x04 || X || Y) per curve. */
const EC_POINT_BYTES: Record<string, number> = { nistp256: 65, nistp384: 97, nistp521: 133 };

/** Reads the SSH wire format (RFC 4251): each field is a uint32 length and that many bytes. */
class WireReader {
  private offset = 0;
  constructor(private readonly blob: Buffer) {}

  field(): Buffer {
    if (this.offset + 4 > this.blob.length) throw invalid("SSH key blob is truncated");
    const length = this.blob.readUInt32BE(this.offset);
    const start = this.offset + 4;
    if (start + length > this.blob.length) throw invalid("SSH key blob is truncated");
    this.offset = start + length;
    return this.blob.subarray(start, start + length);
  }

  atEnd(): boolean {
    return this.offset === this.blob.length;
  }
}

function bitLength(mpint: Buffer): number {
  let i = 0;
  while (i < mpint.length && mpint[i] === 0) i++;
  if (i === mpint.length) return 0;
  return (mpint.length - i - 1) * 8 + (mpint[i] as number).toString(2).length;
}

function checkEcdsa(reader: WireReader, curve: string): void {
  if (reader.field().toString("latin1") !== curve) throw invalid(`SSH key blob names another curve than ${curve}`);
  const point = reader.field();
  if (point.length !== EC_POINT_BYTES[curve] || point[0] !== 0x04) throw invalid(`SSH key has no valid ${curve} point`);
}

/** Walks the blob after its type field; every field must be there and nothing after them. */
function checkKeyFields(type: SshKeyType, reader: WireReader): void {
  switch (type) {
    case "ssh-ed25519":
    case "sk-ssh-ed25519@openssh.com":
      if (reader.field().length !== 32) throw invalid("SSH ed25519 key must be 32 bytes");
      break;
    case "ssh-rsa": {
      reader.field(); // public exponent
      const bits = bitLength(reader.field());
      if (bits < MIN_RSA_BITS) throw invalid(`SSH RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
      break;
    }
    case "ecdsa-sha2-nistp256":
    case "ecdsa-sha2-nistp384":
    case "ecdsa-sha2-nistp521":
      checkEcdsa(reader, type.slice("ecdsa-sha2-".length));
      break;
    case "sk-ecdsa-sha2-nistp256@openssh.com":
      checkEcdsa(reader, "nistp256");
      break;
  }
  if (type.startsWith("sk-")) reader.field(); // FIDO application, e.g. "ssh:"
  if (!reader.atEnd()) throw invalid("SSH key blob has trailing data");
}

function isSshKeyType(value: string): value is SshKeyType {
  return (SSH_KEY_TYPES as readonly string[]).includes(value);
}

/**
 * Parses one authorized_keys-style line `type base64 [comment]` (no options prefix). The blob must
 * be canonical base64, its embedded type must be the declared one and its fields complete.
 */
export function validateSshPublicKey(key: string): SshPublicKey {
  if (key.length > MAX_KEY_LINE) throw invalid(`SSH key is longer than ${MAX_KEY_LINE} characters`);
  if (/[\r\n\0]/.test(key)) throw invalid("SSH key must be a single line");
  const match = /^\s*(\S+)[ \t]+(\S+)(?:[ \t]+(.*?))?\s*$/.exec(key);
  if (!match) throw invalid("SSH key must look like `type base64 [comment]`");
  const [, type = "", body = "", rawComment] = match;
  if (!isSshKeyType(type)) throw invalid(`SSH key type ${JSON.stringify(type.slice(0, 40))} is not supported (${SSH_KEY_TYPES.join(", ")})`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) throw invalid("SSH key body is not valid base64");
  const blob = Buffer.from(body, "base64");
  if (blob.toString("base64") !== body) throw invalid("SSH key body is not valid base64");
  const reader = new WireReader(blob);
  const embedded = reader.field().toString("latin1");
  if (embedded !== type) throw invalid(`SSH key is declared ${type} but its blob is ${JSON.stringify(embedded.slice(0, 40))}`);
  checkKeyFields(type, reader);
  const comment = rawComment ? rawComment : undefined;
  if (comment !== undefined && /[\x00-\x1f\x7f]/.test(comment)) throw invalid("SSH key comment has control characters");
  return { type, body, comment, line: comment ? `${type} ${body} ${comment}` : `${type} ${body}` };
}

/** Validates a list of keys and refuses the same key twice (comments aside). Returns the normalised lines. */
export function normaliseSshKeys(keys: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return keys.map((raw, index) => {
    let key: SshPublicKey;
    try {
      key = validateSshPublicKey(raw);
    } catch (err) {
      throw invalid(`SSH key ${index + 1}: ${(err as Error).message}`);
    }
    const identity = `${key.type} ${key.body}`;
    const first = seen.get(identity);
    if (first !== undefined) throw invalid(`SSH key ${index + 1} is the same ${key.type} key as key ${first + 1}`);
    seen.set(identity, index);
    return key.line;
  });
}

// ---------------------------------------------------------------------------------------------
// Passwords: SHA-512 crypt ("$6$", Drepper's specification), as glibc, chpasswd and `openssl passwd -6` do it

const CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** glibc's default; also what `openssl passwd -6` uses, so the hashes are comparable. */
const ROUNDS = 5000;
const SALT_LENGTH = 16;
/** Each round hashes the password again: an unbounded one is a denial of service. */
const MAX_PASSWORD_BYTES = 512;

const SHA_CRYPT_HASH = /^\$(?:6\$(?:rounds=\d{4,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}|5\$(?:rounds=\d{4,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43})$/;

/** True for a SHA-512 or SHA-256 crypt hash (`$6$…`, `$5$…`), the schemes every guest's libc reads. */
export function isPasswordHash(value: string): boolean {
  return SHA_CRYPT_HASH.test(value);
}

function sha512(...parts: Buffer[]): Buffer {
  const hash = createHash("sha512");
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** `length` bytes of `digest` repeated. */
function stretch(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += digest.length) digest.copy(out, i, 0, Math.min(digest.length, length - i));
  return out;
}

/** The crypt base64 of the final digest, in the byte order the specification prescribes. */
function encodeDigest(digest: Buffer): string {
  const byte = (i: number) => digest[i] as number;
  let out = "";
  const put = (value: number, chars: number) => {
    for (let c = 0; c < chars; c++, value >>= 6) out += CRYPT_ALPHABET[value & 0x3f];
  };
  for (let i = 0; i < 21; i++) {
    const group = [i, i + 21, i + 42];
    const [b2, b1, b0] = [0, 1, 2].map((k) => byte(group[(k + i) % 3] as number)) as [number, number, number];
    put((b2 << 16) | (b1 << 8) | b0, 4);
  }
  put(byte(63), 2);
  return out;
}

function sha512Crypt(password: Buffer, salt: Buffer): string {
  const b = sha512(password, salt, password);
  const a = createHash("sha512").update(password).update(salt).update(stretch(b, password.length));
  for (let n = password.length; n > 0; n >>= 1) a.update(n & 1 ? b : password);
  let c = a.digest();
  const p = stretch(sha512(...Array<Buffer>(password.length).fill(password)), password.length);
  const s = stretch(sha512(...Array<Buffer>(16 + (c[0] as number)).fill(salt)), salt.length);
  for (let round = 0; round < ROUNDS; round++) {
    const h = createHash("sha512");
    h.update(round & 1 ? p : c);
    if (round % 3) h.update(s);
    if (round % 7) h.update(p);
    h.update(round & 1 ? c : p);
    c = h.digest();
  }
  return `$6$${salt.toString("latin1")}$${encodeDigest(c)}`;
}

/** Hashes a password for /etc/shadow with a fresh random salt. The plain text goes nowhere else. */
export function hashPassword(plain: string): string {
  const password = Buffer.from(plain, "utf8");
  if (password.length === 0) throw invalid("password must not be empty");
  if (password.length > MAX_PASSWORD_BYTES) throw invalid(`password must be at most ${MAX_PASSWORD_BYTES} bytes`);
  let salt = "";
  for (let i = 0; i < SALT_LENGTH; i++) salt += CRYPT_ALPHABET[randomInt(CRYPT_ALPHABET.length)];
  return sha512Crypt(password, Buffer.from(salt, "latin1"));
}
