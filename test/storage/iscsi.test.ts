import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runCommand } from "../../common/exec";
import type { StorageBackend } from "../../activities/storage/backend";
import { createIscsiBackend, type IscsiConfig } from "../../activities/storage/iscsi";
import { blockDevices, removeGuests, startGuest } from "./kvm-guest";
import { failureRecorder } from "../support/failure-recorder";

/**
 * The iSCSI backend against a real tgtd target with CHAP (scripts/services/iscsi-target.sh: LUN 1
 * of 64 MiB, LUNs 2 and 3 of 128 MiB) and a running KVM guest. Every expected failure is collected
 * and, at the end, checked not to contain the CHAP password.
 */

const REPO = path.resolve(__dirname, "../..");
const ISCSI_DIR = process.env.QX_ISCSI_DIR ?? path.join(REPO, ".data/iscsi");
const IQN = "iqn.2026-11.io.quantix:test";
const PORTAL = "127.0.0.1:3260";
const MiB = 1024 * 1024;
const GUEST_PREFIX = "qxtest-stor-iscsi-";
const run = `t${randomUUID().slice(0, 8)}`;
const vol = (name: string) => `${run}-${name}`;

let workDir: string;
let secretFile: string;
let config: IscsiConfig;
let backend: StorageBackend;
let password: string;
const { failures, failureOf } = failureRecorder();

const lunOpts = (lun: number) =>
  `driver=iscsi,transport=tcp,portal=${PORTAL},target=${IQN},lun=${lun},user=qxuser,password-secret=s0`;
const secretObject = () => ["--object", `secret,id=s0,file=${secretFile}`];
/** Fills `length` bytes at `offset` of a LUN with `pattern` (qemu-io -P), or checks they hold it. */
const qemuIo = (op: "write" | "read", lun: number, pattern: number, offset: number, length: number) =>
  runCommand("qemu-io", [...secretObject(), "--image-opts", lunOpts(lun), "-c", `${op} -P ${pattern} ${offset} ${length}`]);
const compare = (a: string, b: string) => runCommand("qemu-img", ["compare", ...secretObject(), "--image-opts", a, b]);
const isZero = async (lun: number, sizeBytes: number) => compare(lunOpts(lun), `driver=null-co,size=${sizeBytes},read-zeroes=on`);

beforeAll(async () => {
  await runCommand("bash", [path.join(REPO, "scripts/services/libvirtd.sh"), "start"]);
  await runCommand("bash", [path.join(REPO, "scripts/services/iscsi-target.sh"), "start"], { timeoutMs: 60_000 });
  password = await readFile(path.join(ISCSI_DIR, "chap-password"), "utf8");
  workDir = await mkdtemp(path.join(os.tmpdir(), "qx-iscsi-test-"));
  secretFile = path.join(workDir, "chap");
  await writeFile(secretFile, password, { mode: 0o600 });
  config = {
    portal: PORTAL,
    target: IQN,
    chap: { username: await readFile(path.join(ISCSI_DIR, "chap-user"), "utf8"), secretUsage: `qxtest-${run}`, password },
    libvirtUri: "qemu:///system",
    lunAssignments: { [vol("a")]: 1, [vol("b")]: 2, [vol("c")]: 3 },
  };
  backend = createIscsiBackend(config);
}, 90_000);

afterAll(async () => {
  try {
    await removeGuests(GUEST_PREFIX);
    await backend.teardownPool();
  } finally {
    await rm(workDir, { recursive: true, force: true });
    await runCommand("bash", [path.join(REPO, "scripts/services/iscsi-target.sh"), "stop"], { timeoutMs: 60_000 });
  }
}, 90_000);

test("initPool defines a private iscsi secret with the CHAP password; twice is fine", async () => {
  await backend.initPool();
  await backend.initPool();
  const { stdout } = await runCommand("virsh", ["-c", "qemu:///system", "secret-list"]);
  const uuid = new RegExp(`(\\S+)\\s+iscsi ${config.chap!.secretUsage}`).exec(stdout)?.[1];
  expect(uuid).toBeDefined();
  expect(stdout.match(new RegExp(`iscsi ${config.chap!.secretUsage}`, "g"))).toHaveLength(1);
  const err = await failureOf(runCommand("virsh", ["-c", "qemu:///system", "secret-get-value", uuid!]));
  expect(err.message).toMatch(/private/);
});

test("createVolume takes the assigned LUN if it is large enough", async () => {
  const info = await backend.createVolume({ volumeId: vol("a"), sizeBytes: 64 * MiB, source: { kind: "empty" } });
  expect(info).toEqual({
    volumeId: vol("a"),
    location: `iscsi://${PORTAL}/${IQN}/1`,
    format: "raw",
    sizeBytes: 64 * MiB,
    allocatedBytes: 64 * MiB,
  });
  expect(await backend.createVolume({ volumeId: vol("a"), sizeBytes: 64 * MiB, source: { kind: "empty" } })).toEqual(info);
  const capacity = await runCommand("iscsi-readcapacity16", ["-s", `iscsi://qxuser@${PORTAL}/${IQN}/1`], {
    env: { ...process.env, LIBISCSI_CHAP_PASSWORD: password },
  });
  expect(Number(capacity.stdout.trim())).toBe(64 * MiB);
  const qemuInfo = await runCommand("qemu-img", ["info", "--output=json", ...secretObject(), "--image-opts", lunOpts(1)]);
  expect(JSON.parse(qemuInfo.stdout)).toMatchObject({ "virtual-size": 64 * MiB });

  const tooBig = { volumeId: vol("a"), sizeBytes: 65 * MiB, source: { kind: "empty" as const } };
  expect((await failureOf(backend.createVolume(tooBig))).type).toBe("INSUFFICIENT_CAPACITY");
  const unassigned = { volumeId: vol("x"), sizeBytes: MiB, source: { kind: "empty" as const } };
  expect((await failureOf(backend.createVolume(unassigned))).type).toBe("VALIDATION_FAILED");
  expect(await backend.volumeInfo(vol("x"))).toBeNull();
  await qemuIo("write", 1, 0xab, 0, 4 * MiB);
});

test("the volume attaches to a running KVM guest", async () => {
  const guest = `${GUEST_PREFIX}${run}`;
  try {
    await startGuest(guest, await backend.diskElement(vol("a")));
    expect(await blockDevices(guest)).toEqual({ vda: `${IQN}/1` });
  } finally {
    await removeGuests(guest);
  }
}, 60_000);

test("resizeVolume cannot grow a LUN and refuses to shrink", async () => {
  await backend.resizeVolume(vol("a"), 64 * MiB);
  expect((await failureOf(backend.resizeVolume(vol("a"), 96 * MiB))).type).toBe("NOT_SUPPORTED");
  expect((await failureOf(backend.resizeVolume(vol("a"), 32 * MiB))).type).toBe("VALIDATION_FAILED");
});

test("a clone is a full copy onto the clone's LUN", async () => {
  const info = await backend.createVolume({ volumeId: vol("b"), sizeBytes: 64 * MiB, source: { kind: "clone", volumeId: vol("a") } });
  expect(info).toMatchObject({ sizeBytes: 128 * MiB, location: `iscsi://${PORTAL}/${IQN}/2` });
  expect(info.backingVolumeId).toBeUndefined();
  await qemuIo("read", 2, 0xab, 0, 4 * MiB);
  await compare(lunOpts(1), lunOpts(2));
  const fromSnapshot = { volumeId: vol("b"), sizeBytes: MiB, source: { kind: "clone" as const, volumeId: vol("a"), snapshot: "s" } };
  expect((await failureOf(backend.createVolume(fromSnapshot))).type).toBe("NOT_SUPPORTED");
});

test("copyVolume copies with progress; an aborted copy leaves the target zeroed", async () => {
  const progress: [number, number][] = [];
  await backend.copyVolume(vol("a"), vol("c"), (done, total) => progress.push([done, total]));
  expect(progress.length).toBeGreaterThan(2);
  expect(progress.at(-1)).toEqual([64 * MiB, 64 * MiB]);
  await compare(lunOpts(1), lunOpts(3));

  await qemuIo("write", 2, 0x5a, 0, 128 * MiB);
  const abort = new AbortController();
  const done: number[] = [];
  const onProgress = (bytes: number) => {
    done.push(bytes);
    if (bytes > 0) abort.abort();
  };
  const err = await failureOf(backend.copyVolume(vol("b"), vol("c"), onProgress, abort.signal));
  expect(err.type).toBe("CANCELLED");
  expect(done.at(-1)).toBeLessThan(128 * MiB);
  await isZero(3, 128 * MiB);
  expect((await failureOf(backend.copyVolume(vol("b"), vol("a"), () => undefined))).type).toBe("INSUFFICIENT_CAPACITY");
}, 60_000);

test("snapshots are not supported", async () => {
  expect(await backend.listSnapshots(vol("a"))).toEqual([]);
  expect((await failureOf(backend.createSnapshot(vol("a"), "s1"))).type).toBe("NOT_SUPPORTED");
  expect((await failureOf(backend.revertSnapshot(vol("a"), "s1"))).type).toBe("NOT_SUPPORTED");
  expect((await failureOf(backend.deleteSnapshot(vol("a"), "s1"))).type).toBe("NOT_SUPPORTED");
});

test("listFiles shows the target's LUNs at the pool root only", async () => {
  expect(await backend.listFiles("")).toEqual([
    { name: "lun-1", type: "raw", sizeBytes: 64 * MiB, modifiedAt: "" },
    { name: "lun-2", type: "raw", sizeBytes: 128 * MiB, modifiedAt: "" },
    { name: "lun-3", type: "raw", sizeBytes: 128 * MiB, modifiedAt: "" },
  ]);
  expect((await failureOf(backend.listFiles("lun-1"))).type).toBe("INVALID_PATH");
});

test("status counts assigned LUNs as used and reports a missing one", async () => {
  expect(await backend.status()).toEqual({ health: "healthy", capacityBytes: 320 * MiB, freeBytes: 0, volumeCount: 3 });
  const partly = createIscsiBackend({ ...config, lunAssignments: { [vol("a")]: 1, [vol("gone")]: 9 } });
  expect(await partly.status()).toMatchObject({ health: "degraded", capacityBytes: 320 * MiB, freeBytes: 256 * MiB, volumeCount: 1 });
});

test("deleteVolume zeroes the LUN; deleting twice is fine", async () => {
  await backend.deleteVolume(vol("a"));
  await backend.deleteVolume(vol("a"));
  await isZero(1, 64 * MiB);
  await backend.deleteVolume(vol("never-assigned"));
});

test("a dead portal or a wrong password fails fast with a typed error", async () => {
  const started = Date.now();
  const dead = createIscsiBackend({ ...config, portal: "127.0.0.1:1" });
  expect((await failureOf(dead.volumeInfo(vol("a")))).type).toBe("POOL_UNAVAILABLE");
  expect((await dead.status()).health).toBe("error");
  const wrong = createIscsiBackend({ ...config, chap: { ...config.chap!, password: "not-the-password" } });
  const err = await failureOf(wrong.volumeInfo(vol("a")));
  expect(err.type).toBe("POOL_UNAVAILABLE");
  expect(err.message).not.toContain("not-the-password");
  expect(Date.now() - started).toBeLessThan(15_000);
}, 40_000);

test("no error message carries the CHAP password", () => {
  expect(failures.length).toBeGreaterThan(10);
  for (const err of failures) expect(`${err.message} ${err.stack ?? ""}`).not.toContain(password);
});
