import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { runCommand } from "../../common/exec";
import type { StorageBackend } from "../../activities/storage/backend";
import { blockDevices, removeGuests, startGuest } from "./kvm-guest";

/**
 * The behaviour every qcow2-file backend (dir, NFS by URL, NFS mounted) must show, run against real
 * qemu-img, real files and a real libvirt guest. `poolDir` is the pool's directory as seen on this
 * host's file system (for NFS: the directory the test server exports), used to plant fixture
 * files and to look for leftovers behind the backend's back.
 */
export interface BackendUnderTest {
  backend: StorageBackend;
  poolDir: string;
  /** Prefix of the libvirt domains this suite defines (always removed again). */
  domainPrefix: string;
}

const MiB = 1024 * 1024;

export const newId = () => randomUUID();

export async function qemuInfo(location: string): Promise<Record<string, unknown>> {
  return JSON.parse((await runCommand("qemu-img", ["info", "-U", "--output=json", location])).stdout) as Record<string, unknown>;
}

/** Fills `length` bytes at `offset` with `pattern` through qemu (works on paths and nfs:// URLs). */
async function writePattern(location: string, pattern: number, offset: number, length: number): Promise<void> {
  await runCommand("qemu-io", ["-f", "qcow2", "-c", `write -P ${pattern} ${offset} ${length}`, location]);
}

/** Succeeds only if the bytes read back are all `pattern`. */
async function readPattern(location: string, pattern: number, offset: number, length: number): Promise<void> {
  const { stdout } = await runCommand("qemu-io", ["-f", "qcow2", "-c", `read -P ${pattern} ${offset} ${length}`, location]);
  expect(stdout).not.toMatch(/Pattern verification failed/);
}

async function identical(a: string, b: string): Promise<boolean> {
  try {
    await runCommand("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", a, b]);
    return true;
  } catch {
    return false;
  }
}

async function expectFailure(promise: Promise<unknown>, type: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ type });
}

/** Writes the listFiles fixtures: one file per type, told apart by content only (names lie). */
async function plantFixtures(poolDir: string): Promise<void> {
  const dir = path.join(poolDir, "images");
  await fs.mkdir(path.join(dir, "subdir"), { recursive: true });
  const iso = Buffer.alloc(0x8800);
  iso.write("CD001", 0x8001, "latin1");
  await fs.writeFile(path.join(dir, "install.img"), iso);
  await runCommand("qemu-img", ["create", "-q", "-f", "qcow2", path.join(dir, "cloud.iso"), "16M"]);
  await fs.writeFile(path.join(dir, "sparse.bin"), Buffer.concat([Buffer.from("KDMV", "latin1"), Buffer.alloc(508)]));
  await fs.writeFile(path.join(dir, "desc.txt"), "# Disk DescriptorFile\nversion=1\n");
  await fs.writeFile(path.join(dir, "disk.qcow2"), Buffer.alloc(MiB)); // raw, whatever its name says
  await fs.writeFile(path.join(dir, "notes.txt"), "not a disk\n");
  await fs.symlink("disk.qcow2", path.join(dir, "link-in"));
  await fs.symlink("/etc", path.join(dir, "link-out"));
  await fs.symlink("../../../../../../../../etc/passwd", path.join(dir, "link-up"));
  await fs.symlink("gone.qcow2", path.join(dir, "link-dangling"));
  await fs.symlink("loop-b", path.join(dir, "loop-a"));
  await fs.symlink("loop-a", path.join(dir, "loop-b"));
}

export function backendSuite(setup: () => BackendUnderTest): void {
  let backend: StorageBackend;
  let poolDir: string;
  let domainPrefix: string;
  const empty = (volumeId: string, sizeBytes = 64 * MiB) => backend.createVolume({ volumeId, sizeBytes, source: { kind: "empty" } });

  beforeAll(async () => {
    ({ backend, poolDir, domainPrefix } = setup());
    await backend.initPool();
  });

  test("creates an empty qcow2 volume, idempotently", async () => {
    const id = newId();
    const created = await empty(id);
    expect(created).toMatchObject({ volumeId: id, format: "qcow2", sizeBytes: 64 * MiB });
    expect(await qemuInfo(created.location)).toMatchObject({ format: "qcow2", "virtual-size": 64 * MiB });
    expect(await empty(id)).toMatchObject({ volumeId: id, sizeBytes: 64 * MiB });
    await expectFailure(empty(id, 32 * MiB), "CONFLICT");
    await expectFailure(empty(id, 1000), "VALIDATION_FAILED");
    expect(await backend.volumeInfo(newId())).toBeNull();
  });

  test("a partial file left by a crashed attempt is no volume and does not block the retry", async () => {
    const id = newId();
    const before = (await backend.status()).volumeCount;
    await fs.writeFile(path.join(poolDir, `.${id}.qcow2.part`), "half a header");
    expect(await backend.volumeInfo(id)).toBeNull();
    expect((await backend.status()).volumeCount).toBe(before);
    expect((await backend.listFiles("")).map((e) => e.name)).not.toContain(`.${id}.qcow2.part`);
    await empty(id);
    expect((await fs.readdir(poolDir)).filter((name) => name.includes(id))).toEqual([`${id}.qcow2`]);
    await backend.deleteVolume(id);
  });

  test("refuses volume ids that are not plain names", async () => {
    for (const bad of ["../x", "a/b", ".hidden", "a..b", "", "x".repeat(129), "a b"]) {
      await expectFailure(empty(bad), "VALIDATION_FAILED");
    }
  });

  test("grows a volume and refuses to shrink it", async () => {
    const id = newId();
    const { location } = await empty(id);
    await backend.resizeVolume(id, 128 * MiB);
    await backend.resizeVolume(id, 128 * MiB);
    expect(await qemuInfo(location)).toMatchObject({ "virtual-size": 128 * MiB });
    await expectFailure(backend.resizeVolume(id, 64 * MiB), "VALIDATION_FAILED");
    await expectFailure(backend.resizeVolume(newId(), 128 * MiB), "VOLUME_NOT_FOUND");
  });

  test("makes copy-on-write clones and keeps their base", async () => {
    const base = newId();
    const clone = newId();
    const baseLocation = (await empty(base)).location;
    await writePattern(baseLocation, 0x5a, 0, MiB);
    const spec = { volumeId: clone, sizeBytes: 96 * MiB, source: { kind: "clone" as const, volumeId: base } };
    const created = await backend.createVolume(spec);
    expect(created.backingVolumeId).toBe(base);
    expect(await backend.createVolume(spec)).toMatchObject({ volumeId: clone, backingVolumeId: base });
    expect(await qemuInfo(created.location)).toMatchObject({
      "virtual-size": 96 * MiB,
      "backing-filename": baseLocation,
      "backing-filename-format": "qcow2",
    });
    await readPattern(created.location, 0x5a, 0, MiB);
    await expectFailure(backend.deleteVolume(base), "VOLUME_IN_USE");
    await expectFailure(backend.createVolume({ ...spec, volumeId: newId(), sizeBytes: 32 * MiB }), "VALIDATION_FAILED");
    await backend.deleteVolume(clone);
    await backend.deleteVolume(base);
  });

  test("creates volumes from base images, copied or copy-on-write", async () => {
    const imageDir = path.join(poolDir, "base-images");
    await fs.mkdir(imageDir, { recursive: true });
    const imageFile = path.join(imageDir, "tiny.qcow2");
    await runCommand("qemu-img", ["create", "-q", "-f", "qcow2", imageFile, "32M"]);
    await writePattern(imageFile, 0x33, 0, MiB);
    const cow = await backend.createVolume({ volumeId: newId(), sizeBytes: 64 * MiB, source: { kind: "image", path: "base-images/tiny.qcow2", cow: true } });
    expect(String((await qemuInfo(cow.location))["backing-filename"])).toMatch(/\/base-images\/tiny\.qcow2$/);
    const copy = await backend.createVolume({ volumeId: newId(), sizeBytes: 64 * MiB, source: { kind: "image", path: "base-images/tiny.qcow2", cow: false } });
    const copyInfo = await qemuInfo(copy.location);
    expect(copyInfo["backing-filename"]).toBeUndefined();
    expect(copyInfo["virtual-size"]).toBe(64 * MiB);
    await readPattern(copy.location, 0x33, 0, MiB);
    // An image naming another file as its backing file could expose any host file to the guest.
    await runCommand("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", path.join(imageDir, "evil.qcow2"), "1M"]);
    await expectFailure(backend.createVolume({ volumeId: newId(), sizeBytes: 64 * MiB, source: { kind: "image", path: "base-images/evil.qcow2", cow: false } }), "VALIDATION_FAILED");
    await expectFailure(backend.createVolume({ volumeId: newId(), sizeBytes: 64 * MiB, source: { kind: "image", path: "../tiny.qcow2", cow: true } }), "INVALID_PATH");
    await expectFailure(backend.createVolume({ volumeId: newId(), sizeBytes: 16 * MiB, source: { kind: "image", path: "base-images/tiny.qcow2", cow: true } }), "VALIDATION_FAILED");
    await backend.deleteVolume(cow.volumeId);
    await backend.deleteVolume(copy.volumeId);
  });

  test("copies a volume in full, reporting progress", async () => {
    const source = newId();
    const target = newId();
    const sourceLocation = (await empty(source, 96 * MiB)).location;
    await writePattern(sourceLocation, 0xab, 0, 64 * MiB);
    const reports: Array<[number, number]> = [];
    const copied = await backend.copyVolume(source, target, (done, total) => reports.push([done, total]));
    expect(copied).toMatchObject({ volumeId: target, sizeBytes: 96 * MiB });
    expect(copied.backingVolumeId).toBeUndefined();
    expect(reports.length).toBeGreaterThan(2);
    expect(reports.every(([, total]) => total === 96 * MiB)).toBe(true);
    expect(reports.map(([done]) => done)).toEqual([...reports.map(([done]) => done)].sort((a, b) => a - b));
    expect(reports.at(-1)).toEqual([96 * MiB, 96 * MiB]);
    expect(await identical(sourceLocation, copied.location)).toBe(true);
    // A retry after success finds the finished copy.
    expect(await backend.copyVolume(source, target, () => undefined)).toMatchObject({ volumeId: target });
    await expectFailure(backend.copyVolume(newId(), newId(), () => undefined), "VOLUME_NOT_FOUND");
    await backend.deleteVolume(target);
    await backend.deleteVolume(source);
  });

  test("an aborted copy leaves no partial file", async () => {
    const source = newId();
    const target = newId();
    await writePattern((await empty(source, 128 * MiB)).location, 0xcd, 0, 128 * MiB);
    const controller = new AbortController();
    const copy = backend.copyVolume(source, target, (done) => {
      if (done > 0) controller.abort();
    }, controller.signal);
    await expectFailure(copy, "CANCELLED");
    expect(controller.signal.aborted).toBe(true);
    expect(await backend.volumeInfo(target)).toBeNull();
    expect((await fs.readdir(poolDir)).filter((name) => name.includes(target))).toEqual([]);
    await backend.deleteVolume(source);
  });

  test("creates, lists, reverts and deletes internal snapshots", async () => {
    const id = newId();
    const { location } = await empty(id);
    await writePattern(location, 0x11, 0, MiB);
    await backend.createSnapshot(id, "before-upgrade");
    await backend.createSnapshot(id, "before-upgrade");
    const snapshots = await backend.listSnapshots(id);
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]).toMatchObject({ name: "before-upgrade" });
    expect(Date.parse(snapshots[0]?.createdAt ?? "")).toBeGreaterThan(Date.now() - 600_000);
    await writePattern(location, 0x22, 0, MiB);
    await backend.revertSnapshot(id, "before-upgrade");
    await readPattern(location, 0x11, 0, MiB);
    // A snapshot clone is a full copy of the snapshot's content.
    const clone = await backend.createVolume({ volumeId: newId(), sizeBytes: 64 * MiB, source: { kind: "clone", volumeId: id, snapshot: "before-upgrade" } });
    expect(clone.backingVolumeId).toBeUndefined();
    await readPattern(clone.location, 0x11, 0, MiB);
    await expectFailure(backend.revertSnapshot(id, "never-made"), "NOT_FOUND");
    await expectFailure(backend.createSnapshot(id, "2"), "VALIDATION_FAILED");
    await backend.deleteSnapshot(id, "before-upgrade");
    await backend.deleteSnapshot(id, "before-upgrade");
    expect(await backend.listSnapshots(id)).toEqual([]);
    await backend.deleteVolume(clone.volumeId);
    await backend.deleteVolume(id);
  });

  test("deletes volumes idempotently and counts them in the pool status", async () => {
    const before = await backend.status();
    expect(before.health).toBe("healthy");
    const ids = [newId(), newId()];
    for (const id of ids) await empty(id);
    const during = await backend.status();
    expect(during.volumeCount).toBe(before.volumeCount + 2);
    expect(during.capacityBytes).toBeGreaterThan(0);
    expect(during.freeBytes).toBeGreaterThan(0);
    expect(during.freeBytes).toBeLessThanOrEqual(during.capacityBytes);
    for (const id of ids) {
      await backend.deleteVolume(id);
      await backend.deleteVolume(id);
      expect(await backend.volumeInfo(id)).toBeNull();
    }
    expect((await backend.status()).volumeCount).toBe(before.volumeCount);
  });

  test("lists files with types told by content", async () => {
    await plantFixtures(poolDir);
    const entries = await backend.listFiles("images");
    const types = Object.fromEntries(entries.map((e) => [e.name, e.type]));
    expect(types).toEqual({
      "cloud.iso": "qcow2",
      "desc.txt": "vmdk",
      "disk.qcow2": "raw",
      "install.img": "iso",
      "link-dangling": "broken-link",
      "link-in": "raw",
      "loop-a": "broken-link",
      "loop-b": "broken-link",
      "notes.txt": "other",
      "sparse.bin": "vmdk",
      subdir: "directory",
    });
    expect(entries.find((e) => e.name === "disk.qcow2")).toMatchObject({ sizeBytes: MiB });
    // Broken links are shown as such: one looping link must not turn the whole listing into an error.
    expect(entries.find((e) => e.name === "link-dangling")).toMatchObject({ linkProblem: "dangling" });
    expect(entries.find((e) => e.name === "loop-a")).toMatchObject({ linkProblem: "loop" });
    await expect(backend.listFiles("images/loop-a")).rejects.toMatchObject({ type: "NOT_FOUND" });
    expect(Date.parse(entries[0]?.modifiedAt ?? "")).toBeGreaterThan(0);
    expect((await backend.listFiles("")).map((e) => e.name)).toContain("images");
    expect(await backend.listFiles("images/subdir")).toEqual([]);
  });

  test("refuses every path that leaves the pool", async () => {
    const attempts = ["..", "../..", "/etc", "a/../../x", "%2e%2e", "..%2f", "images/link-out", "images/link-up", "images/\0", "images/../../.."];
    for (const attempt of attempts) {
      await expect(backend.listFiles(attempt)).rejects.toMatchObject({ type: "INVALID_PATH" });
    }
  });

  test("a guest starts with a cloned volume attached", async () => {
    const base = newId();
    const clone = newId();
    await empty(base);
    await backend.createVolume({ volumeId: clone, sizeBytes: 64 * MiB, source: { kind: "clone", volumeId: base } });
    const name = `${domainPrefix}${clone.slice(0, 8)}`;
    try {
      await startGuest(name, await backend.diskElement(clone));
      expect((await blockDevices(name)).vda).toMatch(new RegExp(`/${clone}\\.qcow2$`));
      // The base is part of the chain the guest runs on.
      expect((await runCommand("virsh", ["-c", "qemu:///system", "dumpxml", name])).stdout).toContain(`${base}.qcow2`);
    } finally {
      await removeGuests(name);
    }
    await expectFailure(backend.diskElement(newId()), "VOLUME_NOT_FOUND");
    await backend.deleteVolume(clone);
    await backend.deleteVolume(base);
  });
}
