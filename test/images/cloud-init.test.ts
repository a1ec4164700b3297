import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { hashPassword } from "../../common/access-settings";
import { buildSeedIso, removeSeedIso, type BuildSeedIsoInput } from "../../activities/images/cloud-init";

let root: string;
let dir: string;
let sshKey: string;
const PASSWORD = "s3cret-Passw0rd";
const passwordHash = hashPassword(PASSWORD);

function readFromIso(iso: string, file: string): string {
  return execFileSync("isoinfo", ["-i", iso, "-R", "-x", `/${file}`], { encoding: "utf8" });
}

/** Parses a document as cloud-init does: PyYAML's safe_load (Debian's python3-yaml). */
function pyyamlLoad(text: string): unknown {
  const script = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)";
  return JSON.parse(execFileSync("/usr/bin/python3", ["-c", script], { input: text, encoding: "utf8" }));
}

const rejected = async (promise: Promise<unknown>) => {
  const err = await promise.then(
    () => {
      throw new Error("expected a validation failure");
    },
    (e: unknown) => e as { type?: string; message: string },
  );
  expect(err.type).toBe("VALIDATION_FAILED");
  return err.message;
};

beforeAll(() => {
  mkdirSync(path.join(__dirname, "../../.data"), { recursive: true });
  root = mkdtempSync(path.join(__dirname, "../../.data/test-images-seed-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ops@example", "-f", path.join(root, "key")]);
  sshKey = readFileSync(path.join(root, "key.pub"), "utf8").trim();
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeEach(() => {
  dir = mkdtempSync(path.join(root, "pool-"));
});

const baseInput = (): BuildSeedIsoInput => ({ vmId: "vm-42", dir, hostname: "web-1", sshAuthorizedKeys: [sshKey], passwordHash });

describe("buildSeedIso", () => {
  test("writes a cidata ISO whose user-data has the key and the hash, never the password", async () => {
    const { path: iso } = await buildSeedIso({ ...baseInput(), defaultUser: "ops" });
    expect(iso).toBe(path.join(dir, "vm-42-seed.iso"));
    expect(readdirSync(dir)).toEqual(["vm-42-seed.iso"]);
    expect(statSync(iso).mode & 0o777).toBe(0o600);
    expect(execFileSync("isoinfo", ["-d", "-i", iso], { encoding: "utf8" })).toMatch(/^Volume id: cidata$/m);

    const userData = readFromIso(iso, "user-data");
    expect(userData.startsWith("#cloud-config\n")).toBe(true);
    expect(userData).toContain(sshKey);
    expect(userData).toContain(passwordHash);
    expect(userData).not.toContain(PASSWORD);
    expect(pyyamlLoad(userData)).toEqual({
      hostname: "web-1",
      users: [{ name: "ops", shell: "/bin/bash", sudo: "ALL=(ALL) NOPASSWD:ALL", lock_passwd: false, ssh_authorized_keys: [sshKey] }],
      chpasswd: { expire: false, users: [{ name: "ops", password: passwordHash, type: "hash" }] },
      ssh_pwauth: true,
    });
    expect(pyyamlLoad(readFromIso(iso, "meta-data"))).toEqual({ "instance-id": "vm-42", "local-hostname": "web-1" });
  });

  test("without a password: locked password, no chpasswd, no password SSH; default user name", async () => {
    const { path: iso } = await buildSeedIso({ ...baseInput(), passwordHash: undefined });
    const config = pyyamlLoad(readFromIso(iso, "user-data")) as Record<string, unknown>;
    expect(config).not.toHaveProperty("chpasswd");
    expect(config).not.toHaveProperty("ssh_pwauth");
    expect(config.users).toEqual([expect.objectContaining({ name: "quantix", lock_passwd: true })]);
  });

  test("merges caller JSON user-data; strings YAML would misread survive intact", async () => {
    const tricky = ["yes", "no: really", "# not a comment", "a\u0085b", "line\u2028sep", "tab\there", "emoji 🙂", "{[&*!|>'\"%@`"];
    const caller = { packages: ["nginx"], runcmd: [["echo", ...tricky]], write_files: [{ path: "/etc/motd", content: "hi\n" }] };
    // A "__proto__" key must stay data: not change the merged object's prototype, not drop keys.
    const userData = `#cloud-config\n{"__proto__": {"hostname": "evil"}, ${JSON.stringify(caller).slice(1)}`;
    const { path: iso } = await buildSeedIso({ ...baseInput(), userData });
    const config = pyyamlLoad(readFromIso(iso, "user-data")) as Record<string, unknown>;
    expect(config.packages).toEqual(["nginx"]);
    expect(config.runcmd).toEqual([["echo", ...tricky]]);
    expect(config.hostname).toBe("web-1");
    expect(config.users).toEqual([expect.objectContaining({ name: "quantix" })]);
  });

  test("rebuilding replaces the ISO (idempotent) and removeSeedIso accepts already gone", async () => {
    const { path: iso } = await buildSeedIso(baseInput());
    await buildSeedIso({ ...baseInput(), hostname: "web-2" });
    expect(readdirSync(dir)).toEqual(["vm-42-seed.iso"]);
    expect(readFromIso(iso, "meta-data")).toContain("web-2");
    await removeSeedIso({ vmId: "vm-42", dir });
    await removeSeedIso({ vmId: "vm-42", dir });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("refuses unsafe input before writing anything", async () => {
    expect(await rejected(buildSeedIso({ ...baseInput(), userData: "#!/bin/sh\nrm -rf /" }))).toMatch(/#cloud-config/);
    expect(await rejected(buildSeedIso({ ...baseInput(), userData: "#cloud-config\npackages: [nginx]" }))).toMatch(/JSON object/);
    expect(await rejected(buildSeedIso({ ...baseInput(), userData: '#cloud-config\n{"users": [{"name": "evil"}]}' }))).toMatch(/may not set users/);
    expect(await rejected(buildSeedIso({ ...baseInput(), hostname: "web-1\ninstance-id: x" }))).toMatch(/host name/);
    expect(await rejected(buildSeedIso({ ...baseInput(), passwordHash: PASSWORD }))).toMatch(/crypt hash/);
    expect(await rejected(buildSeedIso({ ...baseInput(), defaultUser: "root:x" }))).toMatch(/user name/);
    expect(await rejected(buildSeedIso({ ...baseInput(), sshAuthorizedKeys: [sshKey, `${sshKey} copy`] }))).toMatch(/same ssh-ed25519 key/);
    expect(await rejected(buildSeedIso({ ...baseInput(), vmId: "../vm" }))).toMatch(/safe file name/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
