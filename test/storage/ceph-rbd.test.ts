import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runCommand } from "../../common/exec";
import type { StorageBackend } from "../../activities/storage/backend";
import { createCephRbdBackend, type CephRbdConfig } from "../../activities/storage/ceph-rbd";
import { blockDevices, removeGuests, startGuest } from "./kvm-guest";
import { failureRecorder } from "../support/failure-recorder";

/**
 * The RBD backend against a real single-node Ceph (scripts/services/ceph.sh) and a running KVM
 * guest. Every expected failure is collected and, at the end, checked not to contain the client key.
 */

const REPO = path.resolve(__dirname, "../..");
const CEPH_DIR = process.env.QX_CEPH_DIR ?? path.join(REPO, ".data/ceph");
const KEYRING = path.join(CEPH_DIR, "client.qx.keyring");
const MONITOR = "127.0.0.1:6789";
const MiB = 1024 * 1024;
const GUEST_PREFIX = "qxtest-stor-rbd-";
const run = `t${randomUUID().slice(0, 8)}`;
const vol = (name: string) => `${run}-${name}`;

let workDir: string;
let config: CephRbdConfig;
let backend: StorageBackend;
let key: string;
const { failures, failureOf } = failureRecorder();

/** The rbd CLI as client.qx, independent of the backend's conf file. */
const rbd = async (...args: string[]) =>
  (await runCommand("rbd", ["--conf", "/dev/null", "-m", MONITOR, "--id", "qx", "--keyring", KEYRING, ...args])).stdout;
const rbdInfo = async (image: string) => JSON.parse(await rbd("info", "--format", "json", `rbd/${image}`)) as Record<string, unknown>;
/** qemu's legacy rbd filename: options after ':', with the ':' inside the monitor address escaped. */
const qemuName = (image: string) => `rbd:rbd/${image}:mon_host=${MONITOR.replace(":", "\\:")}:id=qx:keyring=${KEYRING}`;
/** Fills `length` bytes at `offset` with `pattern` (qemu-io -P), or checks they hold it. */
const qemuIo = (op: "write" | "read", image: string, pattern: number, offset: number, length: number) =>
  runCommand("qemu-io", ["-f", "raw", "-c", `${op} -P ${pattern} ${offset} ${length}`, qemuName(image)]);
const identical = (a: string, b: string) => runCommand("qemu-img", ["compare", "-f", "raw", "-F", "raw", qemuName(a), qemuName(b)]);

beforeAll(async () => {
  await runCommand("bash", [path.join(REPO, "scripts/services/libvirtd.sh"), "start"]);
  await runCommand("bash", [path.join(REPO, "scripts/services/ceph.sh"), "start"], { timeoutMs: 170_000 });
  workDir = await mkdtemp(path.join(os.tmpdir(), "qx-rbd-test-"));
  config = {
    pool: "rbd",
    monitors: [MONITOR],
    user: "qx",
    keyring: KEYRING,
    secretUuid: randomUUID(),
    libvirtUri: "qemu:///system",
    confPath: path.join(workDir, "client.conf"),
  };
  backend = createCephRbdBackend(config);
  key = /key = (\S+)/.exec(await readFile(KEYRING, "utf8"))![1]!;
}, 180_000);

afterAll(async () => {
  try {
    await removeGuests(GUEST_PREFIX);
    // Clones first, so that their parents' hidden snapshots are released.
    const images = JSON.parse(await rbd("ls", "--format", "json", "rbd")) as string[];
    const ours = images.filter((i) => i.startsWith(run) && !i.includes("~"));
    for (const image of ours.filter((i) => !i.endsWith("base") && !i.endsWith("big"))) await backend.deleteVolume(image);
    for (const image of ours) await backend.deleteVolume(image);
  } finally {
    await backend.teardownPool();
    await rm(workDir, { recursive: true, force: true });
    await runCommand("bash", [path.join(REPO, "scripts/services/ceph.sh"), "stop"], { timeoutMs: 60_000 });
  }
}, 120_000);

test("initPool defines a private ceph secret holding the key; twice is fine", async () => {
  await backend.initPool();
  await backend.initPool();
  const { stdout } = await runCommand("virsh", ["-c", "qemu:///system", "secret-list"]);
  expect(stdout).toContain(config.secretUuid);
  const err = await failureOf(runCommand("virsh", ["-c", "qemu:///system", "secret-get-value", config.secretUuid]));
  expect(err.message).toMatch(/private/);
});

test("createVolume makes an image of the requested size; a retry returns the same volume", async () => {
  const info = await backend.createVolume({ volumeId: vol("base"), sizeBytes: 64 * MiB, source: { kind: "empty" } });
  expect(info).toMatchObject({ volumeId: vol("base"), format: "raw", sizeBytes: 64 * MiB, location: `rbd:rbd/${vol("base")}` });
  expect(await backend.createVolume({ volumeId: vol("base"), sizeBytes: 64 * MiB, source: { kind: "empty" } })).toEqual(info);
  expect(await rbdInfo(vol("base"))).toMatchObject({ name: vol("base"), size: 64 * MiB });
  expect(await backend.volumeInfo(vol("nothing"))).toBeNull();
  expect((await failureOf(backend.createVolume({ volumeId: vol("base"), sizeBytes: 32 * MiB, source: { kind: "empty" } }))).type).toBe(
    "CONFLICT",
  );
  expect((await failureOf(backend.createVolume({ volumeId: "../x", sizeBytes: MiB, source: { kind: "empty" } }))).type).toBe(
    "VALIDATION_FAILED",
  );
  await qemuIo("write", vol("base"), 0xab, 0, 4 * MiB);
});

test("the volume attaches to a running KVM guest, which keeps it from being deleted", async () => {
  const guest = `${GUEST_PREFIX}${run}`;
  try {
    await startGuest(guest, await backend.diskElement(vol("base")));
    expect(await blockDevices(guest)).toEqual({ vda: `rbd/${vol("base")}` });
    expect((await failureOf(backend.deleteVolume(vol("base")))).type).toBe("VOLUME_IN_USE");
  } finally {
    await removeGuests(guest);
  }
}, 60_000);

test("resizeVolume grows and refuses to shrink", async () => {
  await backend.resizeVolume(vol("base"), 96 * MiB);
  await backend.resizeVolume(vol("base"), 96 * MiB);
  expect((await rbdInfo(vol("base"))).size).toBe(96 * MiB);
  expect((await failureOf(backend.resizeVolume(vol("base"), 64 * MiB))).type).toBe("VALIDATION_FAILED");
  expect((await failureOf(backend.resizeVolume(vol("nothing"), 64 * MiB))).type).toBe("VOLUME_NOT_FOUND");
});

test("a CoW clone shares its parent's blocks through a hidden snapshot", async () => {
  const spec = { volumeId: vol("clone"), sizeBytes: 128 * MiB, source: { kind: "clone" as const, volumeId: vol("base") } };
  const info = await backend.createVolume(spec);
  expect(await backend.createVolume(spec)).toEqual(info);
  expect(info).toMatchObject({ backingVolumeId: vol("base"), sizeBytes: 128 * MiB });
  expect(await rbdInfo(vol("clone"))).toMatchObject({
    size: 128 * MiB,
    parent: { image: vol("base"), snapshot: `qx-clone-${vol("clone")}` },
  });
  await qemuIo("read", vol("clone"), 0xab, 0, 4 * MiB);
  expect(await backend.listSnapshots(vol("base"))).toEqual([]);
  const tooSmall = { volumeId: vol("small"), sizeBytes: 32 * MiB, source: { kind: "clone" as const, volumeId: vol("base") } };
  expect((await failureOf(backend.createVolume(tooSmall))).type).toBe("VALIDATION_FAILED");
});

test("copyVolume makes an independent full copy and reports progress", async () => {
  const progress: [number, number][] = [];
  const info = await backend.copyVolume(vol("base"), vol("copy"), (done, total) => progress.push([done, total]));
  expect(info).toMatchObject({ volumeId: vol("copy"), sizeBytes: 96 * MiB });
  expect(info.backingVolumeId).toBeUndefined();
  expect(progress.length).toBeGreaterThan(2);
  expect(progress.at(-1)).toEqual([96 * MiB, 96 * MiB]);
  await identical(vol("base"), vol("copy"));
  expect((await rbdInfo(vol("copy"))).parent).toBeUndefined();
  // A retry finds the finished copy.
  expect(await backend.copyVolume(vol("base"), vol("copy"), () => undefined)).toEqual(info);
});

test("an aborted copy leaves no partial image", async () => {
  await backend.createVolume({ volumeId: vol("big"), sizeBytes: 512 * MiB, source: { kind: "empty" } });
  await rbd("bench", "--io-type", "write", "--io-size", "4M", "--io-total", "512M", `rbd/${vol("big")}`);
  const abort = new AbortController();
  const percents: number[] = [];
  const err = await failureOf(
    backend.copyVolume(
      vol("big"),
      vol("bigcopy"),
      (done, total) => {
        percents.push((100 * done) / total);
        if (done > 0) abort.abort();
      },
      abort.signal,
    ),
  );
  expect(err.type).toBe("CANCELLED");
  expect(percents.at(-1)).toBeLessThan(100);
  const images = JSON.parse(await rbd("ls", "--format", "json", "rbd")) as string[];
  expect(images.filter((i) => i.startsWith(vol("bigcopy")))).toEqual([]);
  expect(await backend.volumeInfo(vol("bigcopy"))).toBeNull();
  // The killed copier left nothing on the source either: no hidden snapshot, no watch.
  expect(JSON.parse(await rbd("snap", "ls", "--format", "json", `rbd/${vol("big")}`))).toEqual([]);
  await backend.deleteVolume(vol("big"));
}, 120_000);

test("snapshots: create, list, revert, clone from one, delete", async () => {
  await backend.createSnapshot(vol("base"), "s1");
  await backend.createSnapshot(vol("base"), "s1");
  const listed = await backend.listSnapshots(vol("base"));
  expect(listed).toEqual([{ name: "s1", sizeBytes: 96 * MiB, createdAt: expect.any(String) }]);
  expect((await failureOf(backend.createSnapshot(vol("base"), "qx-mine"))).type).toBe("VALIDATION_FAILED");

  await qemuIo("write", vol("base"), 0xcd, 0, 4 * MiB);
  await backend.revertSnapshot(vol("base"), "s1");
  await qemuIo("read", vol("base"), 0xab, 0, 4 * MiB);
  expect((await failureOf(backend.revertSnapshot(vol("base"), "nope"))).type).toBe("NOT_FOUND");

  const fromSnap = await backend.createVolume({
    volumeId: vol("fromsnap"),
    sizeBytes: 96 * MiB,
    source: { kind: "clone", volumeId: vol("base"), snapshot: "s1" },
  });
  expect(fromSnap.backingVolumeId).toBe(vol("base"));
  expect((await failureOf(backend.deleteSnapshot(vol("base"), "s1"))).type).toBe("VOLUME_IN_USE");
  await backend.deleteVolume(vol("fromsnap"));
  await backend.deleteSnapshot(vol("base"), "s1");
  await backend.deleteSnapshot(vol("base"), "s1");
  expect(await backend.listSnapshots(vol("base"))).toEqual([]);
});

test("listFiles shows the images at the pool root only", async () => {
  const entries = await backend.listFiles("");
  const base = { name: vol("base"), type: "raw", sizeBytes: 96 * MiB, modifiedAt: expect.any(String) };
  expect(entries).toEqual(expect.arrayContaining([base]));
  expect((await failureOf(backend.listFiles("dir"))).type).toBe("INVALID_PATH");
});

test("status reports the pool's space, health and volume count", async () => {
  const status = await backend.status();
  const images = JSON.parse(await rbd("ls", "--format", "json", "rbd")) as string[];
  // Other runs' half-made copies ("~copying") are no volumes.
  expect(status).toMatchObject({ health: "healthy", volumeCount: images.filter((i) => !i.includes("~")).length });
  expect(status.freeBytes).toBeGreaterThan(0);
  expect(status.capacityBytes).toBeGreaterThan(status.freeBytes);
});

test("deleting a clone leaves its parent deletable; deletes are idempotent", async () => {
  expect((await failureOf(backend.deleteVolume(vol("base")))).type).toBe("VOLUME_IN_USE");
  await backend.deleteVolume(vol("clone"));
  await backend.deleteVolume(vol("clone"));
  expect(JSON.parse(await rbd("snap", "ls", "--format", "json", `rbd/${vol("base")}`))).toEqual([]);
  await backend.deleteVolume(vol("base"));
  await backend.deleteVolume(vol("base"));
  expect(await backend.volumeInfo(vol("base"))).toBeNull();
});

test("a dead monitor fails fast with a typed error", async () => {
  const dead = createCephRbdBackend({ ...config, monitors: ["127.0.0.1:1"], confPath: path.join(workDir, "dead.conf") });
  const started = Date.now();
  expect((await failureOf(dead.volumeInfo(vol("copy")))).type).toBe("POOL_UNAVAILABLE");
  expect(Date.now() - started).toBeLessThan(15_000);
  const status = await dead.status();
  expect(status.health).toBe("error");
  expect(Date.now() - started).toBeLessThan(30_000);
}, 40_000);

test("a wrong key is refused at once, and not retried", async () => {
  const badKeyring = path.join(workDir, "bad.keyring");
  await writeFile(badKeyring, "[client.qx]\n\tkey = AQDtIwJrM+r+JRAA67BWOaZG0Y/lwgnSQSktYw==\n", { mode: 0o600 });
  const refused = createCephRbdBackend({ ...config, keyring: badKeyring });
  expect(await failureOf(refused.volumeInfo(vol("copy")))).toMatchObject({ type: "POOL_UNAVAILABLE", nonRetryable: true });
});

test("no error message carries the client key", () => {
  expect(failures.length).toBeGreaterThan(10);
  for (const err of failures) expect(`${err.message} ${err.stack ?? ""}`).not.toContain(key);
});
