import path from "node:path";
import { readFile } from "node:fs/promises";
import { runCommand } from "../common/exec";
import { sweepEveryStep } from "./support/sweep";
import { cloneVolumeScenario, createVolumeScenario, deleteVolumeScenario } from "./support/volume-sweeps";
import { waitForNoOther } from "./support/services";
import { startTestSystem, type TestSystem } from "./support/system";
import { completed, domainDisks } from "./support/volumes";

/**
 * Ceph RBD volumes through the API against a real single-node Ceph (scripts/services/ceph.sh, the
 * state directory test/storage/ceph-rbd.test.ts uses): a pool made with the client's cephx key as
 * its secret, volumes hot-plugged into a running KVM guest as rbd network disks, linked and full
 * clones, snapshots, and every step of createVolume and cloneVolume failed in turn. The real
 * system is read with the rbd CLI as client.qx, qemu-img on rbd: names, and libvirt's XML.
 */
const GiB = 1024 ** 3;
const REPO = path.resolve(__dirname, "..");
const CEPH_SCRIPT = path.join(REPO, "scripts/services/ceph.sh");
const CEPH_DIR = process.env.QX_CEPH_DIR ?? path.join(REPO, ".data/ceph");
const CEPH_ENV = { ...process.env, QX_CEPH_DIR: CEPH_DIR };
const KEYRING = path.join(CEPH_DIR, "client.qx.keyring");
const MONITOR = "127.0.0.1:6789";
const SMALL_VM = { name: "rbd-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };

let system: TestSystem;
let key: string;
let poolId: string;
let vmId: string;
/** Images in pool rbd before this file ran (other runs' leftovers): not this test's. */
let foreignImages: Set<string>;

const rbd = async (...args: string[]) =>
  (await runCommand("rbd", ["--conf", "/dev/null", "-m", MONITOR, "--id", "qx", "--keyring", KEYRING, ...args])).stdout;
const rbdInfo = async (image: string) => JSON.parse(await rbd("info", "--format", "json", `rbd/${image}`)) as { size: number; parent?: { image: string } };
const snapNames = async (image: string) => (JSON.parse(await rbd("snap", "ls", "--format", "json", `rbd/${image}`)) as { name: string }[]).map((s) => s.name);
const allImages = async () => JSON.parse(await rbd("ls", "--format", "json", "rbd")) as string[];
/** This test's images, partial copies included. */
const ourImages = async () => (await allImages()).filter((i) => !foreignImages.has(i)).sort();
/** qemu's legacy rbd filename, as client.qx with its keyring (the ':' of the monitor escaped). */
const qemuName = (image: string) => `rbd:rbd/${image}:mon_host=${MONITOR.replace(":", "\\:")}:id=qx:keyring=${KEYRING}`;
const qemuIo = (op: "write" | "read", image: string, command: string) => runCommand("qemu-io", ["-f", "raw", "-c", `${op} ${command}`, qemuName(image)]);
const virsh = async (...args: string[]) => (await runCommand("virsh", ["-c", "qemu:///system", ...args])).stdout;
const volumeRows = () => system.prisma.volume.findMany({ where: { poolId }, select: { id: true, state: true }, orderBy: { id: "asc" } });
const asJson = (value: unknown) => JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));

/** Best effort after a failed run: clones first (their snapshots unprotected and purged), then the rest. */
async function removeOurImages(): Promise<void> {
  const images = await ourImages().catch(() => [] as string[]);
  const withParent = await Promise.all(images.map(async (i) => ((await rbdInfo(i).catch(() => ({}))) as { parent?: unknown }).parent !== undefined));
  const ordered = [...images.filter((_i, n) => withParent[n]), ...images.filter((_i, n) => !withParent[n])];
  for (const image of ordered) {
    for (const snap of await snapNames(image).catch(() => [] as string[])) await rbd("snap", "unprotect", `rbd/${image}@${snap}`).catch(() => undefined);
    await rbd("snap", "purge", "--no-progress", `rbd/${image}`).catch(() => undefined);
    await rbd("rm", "--no-progress", `rbd/${image}`).catch(() => undefined);
  }
}

beforeAll(async () => {
  // Ceph binds fixed ports (3300, 6789, 6800-6809): wait until no other run's cluster is up.
  await waitForNoOther("ceph-mon");
  await runCommand("bash", [CEPH_SCRIPT, "start"], { env: CEPH_ENV, timeoutMs: 170_000 });
  key = /key = (\S+)/.exec(await readFile(KEYRING, "utf8"))![1]!;
  foreignImages = new Set(await allImages());
  system = await startTestSystem({ poolReportIntervalMs: 1_000, poolStaleAfterMs: 60_000 });
}, 800_000);

afterAll(async () => {
  try {
    await system?.shutdown();
    if (foreignImages) await removeOurImages();
  } finally {
    await runCommand("bash", [CEPH_SCRIPT, "stop"], { env: CEPH_ENV, timeoutMs: 60_000 });
  }
}, 120_000);

describe("Ceph RBD volumes through the API", () => {
  let volumeId: string;
  let linkedId: string;
  let fullId: string;
  const operationIds: string[] = [];

  async function run(res: { status: number; body: any }) {
    operationIds.push(res.body.operationId);
    return completed(system, res);
  }

  test("pool create: the cephx key is a secret, handed to libvirt and shown nowhere", async () => {
    const host = system.hosts[0]!;
    const res = await system.request("POST", "/v1/storage/pools", {
      name: "ceph",
      kind: "rbd",
      config: { pool: "rbd", monitors: [MONITOR], user: "qx" },
      secrets: { key },
      hostIds: [host.id],
    });
    const op = await run(res);
    poolId = res.body.poolId;
    expect(op.steps.map((s: { name: string }) => s.name)).toEqual(["load", `init ${host.id}`, "record"]);
    const pool = await system.request("GET", `/v1/storage/pools/${poolId}`);
    expect(pool.body).toMatchObject({ kind: "rbd", config: { pool: "rbd", monitors: [MONITOR], user: "qx" }, status: { health: "healthy", hostsHealthy: 1 } });
    // initStoragePool defined the pool's ceph secret (its uuid is the pool's id); libvirt keeps it private.
    expect(await virsh("secret-list")).toMatch(new RegExp(`${poolId}\\s+ceph\\s+quantix-rbd-${poolId}`));
    await expect(virsh("secret-get-value", poolId)).rejects.toThrow(/private/);

    const vm = await system.request("POST", "/v1/vms", { ...SMALL_VM, poolId: host.poolId });
    await completed(system, vm);
    vmId = vm.body.vmId;
    expect(await system.domainState(vmId)).toBe("running");
  });

  test("create: an RBD image of the requested size, the volume READY", async () => {
    const res = await system.request("POST", "/v1/volumes", { name: "rbd-data", poolId, sizeGiB: 1 });
    await run(res);
    volumeId = res.body.volumeId;
    expect(await rbdInfo(volumeId)).toMatchObject({ name: volumeId, size: GiB });
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body).toMatchObject({ state: "READY", sizeBytes: GiB, format: "raw", attachment: null });
  });

  test("attach: hot-plugged into the running guest as an rbd network disk with cephx auth", async () => {
    await run(await system.request("POST", `/v1/volumes/${volumeId}/attach`, { vmId }));
    const xml = await virsh("dumpxml", `qx-${vmId}`);
    const disk = (xml.match(/<disk type='network'[\s\S]*?<\/disk>/g) ?? []).find((d) => d.includes(`name='rbd/${volumeId}'`));
    expect(disk).toMatch(/<source protocol='rbd' name='rbd\/[^']+'[^>]*>\s*<host name='127\.0\.0\.1' port='6789'\/>/);
    expect(disk).toMatch(new RegExp(`<auth username='qx'>\\s*<secret type='ceph' uuid='${poolId}'/>\\s*</auth>`));
    expect(disk).toContain("<target dev='sda' bus='scsi'/>");
    expect(xml).not.toContain(key);
    // Nor in any process's arguments, qemu's included (libvirt hands it the key encrypted).
    expect((await runCommand("ps", ["-eo", "args"])).stdout).not.toContain(key);
    expect(await domainDisks(vmId, "live")).toEqual({ vda: expect.any(String), sda: `rbd/${volumeId}` });
    expect(await domainDisks(vmId, "config")).toEqual({ vda: expect.any(String), sda: `rbd/${volumeId}` });
  });

  test("resize while attached: the image and the guest's disk grow (virsh blockresize)", async () => {
    await run(await system.request("POST", `/v1/volumes/${volumeId}/resize`, { sizeGiB: 2 }));
    expect((await rbdInfo(volumeId)).size).toBe(2 * GiB);
    expect(await virsh("domblkinfo", `qx-${vmId}`, "sda")).toMatch(new RegExp(`Capacity:\\s+${2 * GiB}`));
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body.sizeBytes).toBe(2 * GiB);
  });

  test("detach: gone from the guest and its definition", async () => {
    await run(await system.request("POST", `/v1/volumes/${volumeId}/detach`));
    expect(Object.keys(await domainDisks(vmId, "live"))).toEqual(["vda"]);
    expect(Object.keys(await domainDisks(vmId, "config"))).toEqual(["vda"]);
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body.attachment).toBeNull();
  });

  test("linked clone: an RBD clone whose parent is the volume", async () => {
    await qemuIo("write", volumeId, "-P 0x5a 1M 1M");
    const res = await system.request("POST", `/v1/volumes/${volumeId}/clone`, { name: "rbd-linked", mode: "linked" });
    await run(res);
    linkedId = res.body.volumeId;
    expect(await rbdInfo(linkedId)).toMatchObject({ size: 2 * GiB, parent: { pool: "rbd", image: volumeId, snapshot: `qx-clone-${linkedId}` } });
    expect((await system.request("GET", `/v1/volumes/${linkedId}`)).body).toMatchObject({ state: "READY", backingVolumeId: volumeId });
    await qemuIo("read", linkedId, "-P 0x5a 1M 1M");
    expect((await system.request("DELETE", `/v1/volumes/${volumeId}`)).status).toBe(409);
  });

  test("full clone: an independent image with the same content", async () => {
    await qemuIo("write", linkedId, "-P 0x33 3M 1M");
    const res = await system.request("POST", `/v1/volumes/${linkedId}/clone`, { name: "rbd-full", mode: "full" });
    await run(res);
    fullId = res.body.volumeId;
    const info = await rbdInfo(fullId);
    expect(info.size).toBe(2 * GiB);
    expect(info.parent).toBeUndefined();
    expect((await system.request("GET", `/v1/volumes/${fullId}`)).body).toMatchObject({ state: "READY", backingVolumeId: null });
    await runCommand("qemu-img", ["compare", "-f", "raw", "-F", "raw", qemuName(linkedId), qemuName(fullId)], { timeoutMs: 60_000 });
    // The copy's hidden snapshot on the source is gone.
    expect(await snapNames(linkedId)).toEqual([]);
  });

  test("snapshot create, list, revert and delete act on the image's RBD snapshots", async () => {
    await run(await system.request("POST", `/v1/volumes/${fullId}/snapshots`, { name: "before" }));
    expect(await snapNames(fullId)).toEqual(["before"]);
    expect((await system.request("GET", `/v1/volumes/${fullId}/snapshots`)).body.items).toEqual([expect.objectContaining({ name: "before" })]);

    await qemuIo("write", fullId, "-P 0x11 1M 1M");
    await run(await system.request("POST", `/v1/volumes/${fullId}/snapshots/before/revert`));
    await qemuIo("read", fullId, "-P 0x5a 1M 1M");

    await run(await system.request("DELETE", `/v1/volumes/${fullId}/snapshots/before`));
    expect(await snapNames(fullId)).toEqual([]);
    expect((await system.request("GET", `/v1/volumes/${fullId}/snapshots`)).body.items).toEqual([]);
  });

  test("delete: clones first, then the base; no image of the test left", async () => {
    for (const id of [fullId, linkedId, volumeId]) await run(await system.request("DELETE", `/v1/volumes/${id}`));
    expect(await ourImages()).toEqual([]);
    expect(await volumeRows()).toEqual([]);
  });

  test("the key is in no operation (API or row) and in no guest definition", async () => {
    expect(operationIds.length).toBeGreaterThan(10);
    for (const id of operationIds) {
      expect(asJson((await system.request("GET", `/v1/operations/${id}`)).body)).not.toContain(key);
      expect(asJson(await system.prisma.operation.findUniqueOrThrow({ where: { id }, include: { steps: true } }))).not.toContain(key);
    }
    expect(asJson((await system.request("GET", "/v1/storage/pools")).body)).not.toContain(key);
    expect(asJson((await system.request("GET", `/v1/storage/pools/${poolId}/files?path=`)).body)).not.toContain(key);
    expect(await virsh("dumpxml", `qx-${vmId}`)).not.toContain(key);
    expect(await virsh("dumpxml", "--inactive", `qx-${vmId}`)).not.toContain(key);
  });
});

describe("failure sweep of createVolume, cloneVolume and deleteVolume on the rbd pool", () => {
  /** Only the `expected` images (none partial) and READY rows; no hidden snapshot on them. */
  const cleanSlate = (expected: string[]) => async () => {
    expect(await ourImages()).toEqual([...expected].sort());
    for (const image of expected) expect(await snapNames(image)).toEqual([]);
    expect((await volumeRows()).map((v) => [v.id, v.state])).toEqual([...expected].sort().map((id) => [id, "READY"]));
  };

  const target = () => ({ system, poolId: () => poolId, cleanSlate: (expected: string[]) => cleanSlate(expected)() });
  // Ceph is the slowest backend: only the steps whose code is the RBD backend's are swept here
  // (storage-volumes.test.ts sweeps every step of the same workflows on a directory pool).
  const backendSteps = (...steps: string[]) => (step: string) => steps.includes(step);

  test("createVolume", async () => {
    expect((await sweepEveryStep(system, { ...createVolumeScenario(target()), only: backendSteps("create") })).undos).toEqual(["create"]);
  }, 300_000);

  test("cloneVolume, linked and full", async () => {
    const res = await system.request("POST", "/v1/volumes", { name: "clone-source", poolId, sizeGiB: 1 });
    await completed(system, res);
    const source = res.body.volumeId as string;
    for (const mode of ["linked", "full"] as const) {
      expect((await sweepEveryStep(system, { ...cloneVolumeScenario(target(), () => source, mode), only: backendSteps("clone") })).undos).toEqual(["clone"]);
    }
    await completed(system, await system.request("DELETE", `/v1/volumes/${source}`));
    expect(await ourImages()).toEqual([]);
  }, 400_000);

  test("deleteVolume recovers forward", async () => {
    await sweepEveryStep(system, { ...deleteVolumeScenario(target()), only: backendSteps("delete") });
  }, 300_000);

  test("deleting the pool removes its libvirt secret", async () => {
    await completed(system, await system.request("DELETE", `/v1/storage/pools/${poolId}`));
    expect(await virsh("secret-list")).not.toContain(poolId);
  });
});
