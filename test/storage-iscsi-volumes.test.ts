import path from "node:path";
import { readFile, rm, writeFile } from "node:fs/promises";
import { historyText } from "./support/history-text";
import { runCommand } from "../common/exec";
import { startTestSystem, type TestSystem } from "./support/system";
import { waitForNoOther } from "./support/services";
import { completed, domainDisks } from "./support/volumes";

/**
 * iSCSI volumes through the API against a real tgtd target with CHAP (scripts/services/iscsi-target.sh
 * with LUNs of 1, 2 and 2 GiB): the control plane assigns each volume a free LUN from the target's
 * listing, hot-plugs it into a running KVM guest, copies it, and zeroes it on delete.
 */
const GiB = 1024 ** 3;
const REPO = path.resolve(__dirname, "..");
const TARGET_SCRIPT = path.join(REPO, "scripts/services/iscsi-target.sh");
const ISCSI_DIR = path.join(REPO, ".data", `iscsi-api-${process.env.QX_TEST_INSTANCE ?? "0"}`);
const TARGET_ENV = { ...process.env, QX_ISCSI_DIR: ISCSI_DIR, QX_ISCSI_LUN_SIZES: "1G 2G 2G" };
const IQN = "iqn.2026-11.io.quantix:test";
const PORTAL = "127.0.0.1:3260";
const SMALL_VM = { name: "iscsi-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };

let system: TestSystem;
let poolId: string;
let vmId: string;
let secretFile: string;

const lunOpts = (lun: number) => `driver=iscsi,transport=tcp,portal=${PORTAL},target=${IQN},lun=${lun},user=qxuser,password-secret=s0`;
const secretObject = () => ["--object", `secret,id=s0,file=${secretFile}`];
const qemuIo = (op: "write" | "read", lun: number, command: string) =>
  runCommand("qemu-io", [...secretObject(), "--image-opts", lunOpts(lun), "-c", `${op} ${command}`]);
const lunSize = async (lun: number) => {
  const password = await readFile(secretFile, "utf8");
  const out = await runCommand("iscsi-readcapacity16", ["-s", `iscsi://qxuser@${PORTAL}/${IQN}/${lun}`], { env: { ...process.env, LIBISCSI_CHAP_PASSWORD: password }, redact: [password] });
  return Number(out.stdout.trim());
};
const isZero = (lun: number, sizeBytes: number) =>
  runCommand("qemu-img", ["compare", ...secretObject(), "--image-opts", lunOpts(lun), `driver=null-co,size=${sizeBytes},read-zeroes=on`], { timeoutMs: 120_000 });

beforeAll(async () => {
  // tgtd listens on a fixed port: wait until no other run's target is up.
  await waitForNoOther("tgtd");
  await runCommand("bash", [TARGET_SCRIPT, "start"], { env: TARGET_ENV, timeoutMs: 60_000 });
  secretFile = path.join(ISCSI_DIR, "qemu-chap-secret");
  await writeFile(secretFile, await readFile(path.join(ISCSI_DIR, "chap-password"), "utf8"), { mode: 0o600 });
  system = await startTestSystem({ poolReportIntervalMs: 1_000 });
}, 700_000);

afterAll(async () => {
  try {
    await system?.shutdown();
  } finally {
    await runCommand("bash", [TARGET_SCRIPT, "stop"], { env: TARGET_ENV, timeoutMs: 60_000 });
    await rm(ISCSI_DIR, { recursive: true, force: true });
  }
}, 120_000);

describe("iSCSI volumes through the API", () => {
  let volumeId: string;
  let cloneId: string;

  test("pool create: the CHAP password is accepted, the target reached, nothing secret shown", async () => {
    const password = await readFile(path.join(ISCSI_DIR, "chap-password"), "utf8");
    const host = system.hosts[0]!;
    const res = await system.request("POST", "/v1/storage/pools", {
      name: "iscsi",
      kind: "iscsi",
      config: { portal: PORTAL, target: IQN, chapUsername: "qxuser" },
      secrets: { chapPassword: password },
      hostIds: [host.id],
    });
    await completed(system, res);
    poolId = res.body.poolId;
    const pool = await system.request("GET", `/v1/storage/pools/${poolId}`);
    expect(pool.body.status).toMatchObject({ health: "healthy", capacityBytes: 5 * GiB });
    expect(JSON.stringify(pool.body)).not.toContain(password);
    // It crossed Temporal to reach the host, sealed: the history (what the Temporal UI shows) has
    // only ciphertext, and so has the host's own copy of the pool definition.
    const init = await system.prisma.operation.findUniqueOrThrow({ where: { id: res.body.operationId } });
    const history = await historyText(system.temporal, init.workflowId);
    expect(history).toContain("qx-sealed:v1:");
    expect(history).not.toContain(password);
    const definition = await readFile(path.join(host.runtime.config.stateDir!, "pools", poolId, "definition.json"), "utf8");
    expect(definition).not.toContain(password);

    const vm = await system.request("POST", "/v1/vms", { ...SMALL_VM, poolId: host.poolId });
    await completed(system, vm);
    vmId = vm.body.vmId;
  });

  test("create: the smallest free LUN that fits is assigned, and the volume is that LUN", async () => {
    const res = await system.request("POST", "/v1/volumes", { name: "lun-vol", poolId, sizeGiB: 1 });
    await completed(system, res);
    volumeId = res.body.volumeId;
    expect(await system.prisma.volume.findUniqueOrThrow({ where: { id: volumeId } })).toMatchObject({ lun: 1, format: "raw", state: "READY" });
    expect(await lunSize(1)).toBe(GiB);
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body.sizeBytes).toBe(GiB);
  });

  test("attach: hot-plugged into the running guest as a network disk on the LUN", async () => {
    await completed(system, await system.request("POST", `/v1/volumes/${volumeId}/attach`, { vmId }));
    expect((await domainDisks(vmId, "live")).sda).toBe(`${IQN}/1`);
    expect((await domainDisks(vmId, "config")).sda).toBe(`${IQN}/1`);
  });

  test("resize beyond the LUN fails NOT_SUPPORTED and changes nothing", async () => {
    const res = await system.request("POST", `/v1/volumes/${volumeId}/resize`, { sizeGiB: 2 });
    const op = await system.waitForOperation(res.body.operationId);
    expect(op).toMatchObject({ state: "FAILED", error: { code: "NOT_SUPPORTED" } });
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body.sizeBytes).toBe(GiB);
    expect(await lunSize(1)).toBe(GiB);
  });

  test("snapshots and linked clones are refused with 422 NOT_SUPPORTED", async () => {
    for (const [url, body] of [
      [`/v1/volumes/${volumeId}/snapshots`, { name: "s1" }],
      [`/v1/volumes/${volumeId}/clone`, { name: "linked", mode: "linked" }],
    ] as const) {
      const res = await system.request("POST", url, body);
      expect({ url, status: res.status, code: res.body.code }).toEqual({ url, status: 422, code: "NOT_SUPPORTED" });
    }
  });

  test("detach: gone from the guest and its definition", async () => {
    await completed(system, await system.request("POST", `/v1/volumes/${volumeId}/detach`));
    expect(Object.keys(await domainDisks(vmId, "live"))).toEqual(["vda"]);
    expect(Object.keys(await domainDisks(vmId, "config"))).toEqual(["vda"]);
  });

  test("full clone: a free LUN gets a copy of the data", async () => {
    await qemuIo("write", 1, "-P 0x5a 1M 1M");
    const res = await system.request("POST", `/v1/volumes/${volumeId}/clone`, { name: "copy", mode: "full" });
    await completed(system, res);
    cloneId = res.body.volumeId;
    expect(await system.prisma.volume.findUniqueOrThrow({ where: { id: cloneId } })).toMatchObject({ lun: 2, backingVolumeId: null, sizeBytes: BigInt(2 * GiB) });
    await qemuIo("read", 2, "-P 0x5a 1M 1M");
  });

  test("delete: each LUN is zeroed and free again", async () => {
    for (const id of [cloneId, volumeId]) await completed(system, await system.request("DELETE", `/v1/volumes/${id}`));
    await isZero(1, GiB);
    await isZero(2, 2 * GiB);
    expect(await system.prisma.volume.count({ where: { poolId } })).toBe(0);
    const again = await system.request("POST", "/v1/volumes", { name: "reuse", poolId, sizeGiB: 1 });
    await completed(system, again);
    expect((await system.prisma.volume.findUniqueOrThrow({ where: { id: again.body.volumeId } })).lun).toBe(1);
    await completed(system, await system.request("DELETE", `/v1/volumes/${again.body.volumeId}`));
  });

  test("a VM created with data disks on the pool gets a free LUN for each, attached from the start", async () => {
    const res = await system.request("POST", "/v1/vms", {
      ...SMALL_VM,
      name: "iscsi-data-vm",
      poolId: system.hosts[0]!.poolId,
      disks: [{ poolId, sizeGiB: 1 }, { poolId, sizeGiB: 1 }],
    });
    await completed(system, res);
    const disks = await system.prisma.volume.findMany({ where: { vmId: res.body.vmId, poolId }, orderBy: { targetDev: "asc" } });
    expect(disks.map((d) => [d.targetDev, d.lun])).toEqual([
      ["sda", 1],
      ["sdb", 2],
    ]);
    expect(await domainDisks(res.body.vmId, "live")).toMatchObject({ sda: `${IQN}/1`, sdb: `${IQN}/2` });
    // Deleting the VM keeps its data disks; deleting them zeroes and frees their LUNs.
    await completed(system, await system.request("DELETE", `/v1/vms/${res.body.vmId}`));
    for (const disk of disks) await completed(system, await system.request("DELETE", `/v1/volumes/${disk.id}`));
    expect(await system.prisma.volume.count({ where: { poolId } })).toBe(0);
  });

  test("no free LUN large enough is a 409 before anything starts", async () => {
    const res = await system.request("POST", "/v1/volumes", { name: "huge", poolId, sizeGiB: 3 });
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 409, code: "INSUFFICIENT_CAPACITY" });
  });
});
