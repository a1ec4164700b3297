/**
 * The NoCloud seed ISO of a VM (volume id `cidata`, files `meta-data` and `user-data`), which
 * cloud-init in the guest reads on first boot. Rebuilt whole on every call and renamed into place,
 * so a retry (or changed access settings before first boot) simply replaces it.
 */
import { chmod, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runTool } from "../../common/exec";
import { buildMetaData, buildUserData } from "./cloud-config";
import { fsyncPath } from "./fsync";
import { assertAbsoluteDir, assertSafeFileName } from "./safe-name";

export interface BuildSeedIsoInput {
  vmId: string;
  /** Absolute directory (of the pool) the ISO goes to. */
  dir: string;
  hostname: string;
  defaultUser?: string;
  sshAuthorizedKeys: string[];
  /** A crypt hash (see common/access-settings.ts hashPassword); never the plain password. */
  passwordHash?: string;
  /** The caller's `#cloud-config` (JSON body), merged; see cloud-config.ts. */
  userData?: string;
}

const GENISOIMAGE_TIMEOUT_MS = 60_000;

function seedPaths(dir: string, vmId: string) {
  return { iso: path.join(dir, `${vmId}-seed.iso`), temp: path.join(dir, `.${vmId}-seed.iso.partial`) };
}

export async function buildSeedIso(input: BuildSeedIsoInput): Promise<{ path: string }> {
  assertSafeFileName("vmId", input.vmId);
  assertAbsoluteDir("dir", input.dir);
  const metaData = buildMetaData(input.vmId, input.hostname);
  const userData = buildUserData(input);
  const { iso, temp } = seedPaths(input.dir, input.vmId);
  // mkdtemp makes a 0700 directory: the password hash is readable by no other local user.
  const staging = await mkdtemp(path.join(os.tmpdir(), "quantix-seed-"));
  try {
    await writeFile(path.join(staging, "meta-data"), metaData, { mode: 0o600 });
    await writeFile(path.join(staging, "user-data"), userData, { mode: 0o600 });
    await runTool(
      "genisoimage",
      ["-quiet", "-input-charset", "utf-8", "-volid", "cidata", "-joliet", "-rock", "-output", temp, path.join(staging, "user-data"), path.join(staging, "meta-data")],
      { timeoutMs: GENISOIMAGE_TIMEOUT_MS, errorCode: "STORAGE_ERROR" },
    );
    // It holds the password hash; libvirt's dynamic ownership hands it to QEMU when the VM starts.
    await chmod(temp, 0o600);
    await fsyncPath(temp);
    await rename(temp, iso);
    await fsyncPath(input.dir);
    return { path: iso };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Removes the seed ISO (and a half-built one); success when already gone. */
export async function removeSeedIso(input: { vmId: string; dir: string }): Promise<void> {
  assertSafeFileName("vmId", input.vmId);
  assertAbsoluteDir("dir", input.dir);
  const { iso, temp } = seedPaths(input.dir, input.vmId);
  await Promise.all([rm(iso, { force: true }), rm(temp, { force: true })]);
}
