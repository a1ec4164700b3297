import fs from "node:fs/promises";
import path from "node:path";
import { runCommand } from "../../common/exec";
import { createNfsBackend } from "../../activities/storage/nfs";
import { backendSuite, newId } from "./backend-suite";
import { removeGuests } from "./kvm-guest";

/**
 * Runs the backend suite against a real userspace NFS server (scripts/services/nfs.sh: rpcbind +
 * nfs-ganesha on 127.0.0.1), reached without a mount through libnfs, and against a "mounted" pool.
 * These machines cannot mount NFS (no kernel client), so the mounted case uses a bind mount: what
 * it tests is the backend's mount check and its delegation to the directory code.
 */
const DOMAIN_PREFIX = "qxtest-stor-nfs-";
const SERVER = "127.0.0.1";
const repoRoot = path.resolve(__dirname, "../..");
const testDir = path.join(repoRoot, ".data", `test-stor-nfs-${process.pid}`);
const serverDir = path.join(testDir, "server");
const exportDir = path.join(serverDir, "export");
const mountSource = path.join(testDir, "mount-source");
const mountPoint = path.join(testDir, "mnt");
const MiB = 1024 * 1024;

async function nfsService(action: "start" | "stop"): Promise<void> {
  await runCommand("bash", [path.join(repoRoot, "scripts/services/nfs.sh"), action], {
    env: { ...process.env, QX_NFS_DIR: serverDir },
  });
}

async function unmount(): Promise<void> {
  await runCommand("umount", [mountPoint]).catch(() => undefined);
}

beforeAll(async () => {
  await removeGuests(DOMAIN_PREFIX);
  await fs.mkdir(mountSource, { recursive: true });
  await fs.mkdir(mountPoint, { recursive: true });
  await nfsService("start");
});

afterAll(async () => {
  await removeGuests(DOMAIN_PREFIX);
  await unmount();
  await nfsService("stop");
  await fs.rm(testDir, { recursive: true, force: true });
});

describe("NFS backend over nfs:// URLs (no mount)", () => {
  backendSuite(() => ({
    backend: createNfsBackend({ server: SERVER, exportPath: exportDir }),
    poolDir: exportDir,
    domainPrefix: DOMAIN_PREFIX,
  }));

  test("describes volumes to libvirt as network disks with their whole backing chain", async () => {
    const backend = createNfsBackend({ server: SERVER, exportPath: exportDir });
    const base = newId();
    const clone = newId();
    await backend.createVolume({ volumeId: base, sizeBytes: 16 * MiB, source: { kind: "empty" } });
    await backend.createVolume({ volumeId: clone, sizeBytes: 16 * MiB, source: { kind: "clone", volumeId: base } });
    const network = (file: string) => ({ "@_protocol": "nfs", "@_name": `${exportDir}/${file}`, host: { "@_name": SERVER } });
    expect(await backend.diskElement(clone)).toEqual({
      "@_type": "network",
      "@_device": "disk",
      driver: { "@_name": "qemu", "@_type": "qcow2" },
      source: network(`${clone}.qcow2`),
      backingStore: { "@_type": "network", format: { "@_type": "qcow2" }, source: network(`${base}.qcow2`), backingStore: "" },
    });
    await backend.deleteVolume(clone);
    await backend.deleteVolume(base);
  });

  test("an unreachable export is reported, not mistaken for an empty pool", async () => {
    const backend = createNfsBackend({ server: SERVER, exportPath: "/not/exported" });
    expect(await backend.status()).toMatchObject({ health: "error", volumeCount: 0 });
    await expect(backend.initPool()).rejects.toMatchObject({ type: "POOL_UNAVAILABLE" });
  });

  test("refuses configurations that would not make a plain nfs:// URL", () => {
    expect(() => createNfsBackend({ server: "a/b", exportPath: exportDir })).toThrow(/invalid NFS server/);
    expect(() => createNfsBackend({ server: SERVER, exportPath: "relative" })).toThrow(/invalid NFS export path/);
    expect(() => createNfsBackend({ server: SERVER, exportPath: `${exportDir}?x=1` })).toThrow(/invalid NFS export path/);
  });
});

describe("NFS backend on a mount point", () => {
  const mounted = () => createNfsBackend({ server: SERVER, exportPath: exportDir, mountPoint });

  test("an unmounted mount point is reported and never written to", async () => {
    expect(await mounted().status()).toMatchObject({ health: "unmounted" });
    await expect(mounted().initPool()).rejects.toMatchObject({ type: "POOL_UNAVAILABLE" });
    await expect(mounted().createVolume({ volumeId: newId(), sizeBytes: MiB, source: { kind: "empty" } })).rejects.toMatchObject({
      type: "POOL_UNAVAILABLE",
    });
    expect(await fs.readdir(mountPoint)).toEqual([]);
  });

  describe("once mounted", () => {
    beforeAll(async () => {
      await runCommand("mount", ["--bind", mountSource, mountPoint]);
    });
    afterAll(unmount);

    backendSuite(() => ({ backend: mounted(), poolDir: mountPoint, domainPrefix: DOMAIN_PREFIX }));

    test("attaches volumes as files", async () => {
      const id = newId();
      await mounted().createVolume({ volumeId: id, sizeBytes: MiB, source: { kind: "empty" } });
      expect(await mounted().diskElement(id)).toMatchObject({ "@_type": "file", source: { "@_file": path.join(mountPoint, `${id}.qcow2`) } });
      await mounted().deleteVolume(id);
    });
  });
});
