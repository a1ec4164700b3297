import path from "node:path";
import { startTestSystem, type TestSystem } from "./support/system";
import { expectCleanSlate } from "./support/assertions";
import { expectEachStepFailsCleanly } from "./support/each-step-fails";
import { completed, domainDisks, poolFiles, qemuImg } from "./support/volumes";

/**
 * createVm with data disks (POST /v1/vms `disks`) on real Temporal, PostgreSQL, qemu-img and KVM:
 * each disk becomes a volume made on the VM's host and attached at sda, sdb...; deleteVm keeps them;
 * a failure at every step, the data disk steps included, leaves nothing behind.
 */
const GiB = 1024 ** 3;
const SMALL_VM = { name: "disks-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };
const BOOT_STEPS = ["validate", "place", "create-disk", "define-domain", "start-domain", "wait-running", "record"];

let system: TestSystem;
let dataPoolId: string;
let dataPoolDir: string;

const host = () => system.hosts[0]!;
/** One disk on the host's own pool, one on a pool made through the API. */
const disks = () => [
  { poolId: host().poolId, sizeGiB: 1 },
  { poolId: dataPoolId, sizeGiB: 2 },
];

beforeAll(async () => {
  system = await startTestSystem();
  dataPoolDir = path.join(path.dirname(host().poolDir), "data-pool");
  const res = await system.request("POST", "/v1/storage/pools", { name: "data-pool", kind: "dir", config: { path: dataPoolDir }, hostIds: [host().id] });
  await completed(system, res);
  dataPoolId = res.body.poolId;
});

afterAll(async () => {
  await system?.shutdown();
});

describe("createVm with data disks", () => {
  let vmId: string;
  let dataVolumes: { id: string; targetDev: string | null; poolId: string }[];

  test("each disk is a volume made on the VM's host and attached at sda, sdb in the domain", async () => {
    const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, poolId: host().poolId, disks: disks() });
    const op = await completed(system, res);
    vmId = res.body.vmId;
    expect(op.steps.map((s: { name: string }) => s.name)).toEqual([
      "validate",
      "place",
      "create-disk",
      "create-data-disk sda",
      "create-data-disk sdb",
      "define-domain",
      "start-domain",
      "wait-running",
      "record",
    ]);
    dataVolumes = await system.prisma.volume.findMany({ where: { vmId, targetDev: { not: null } }, orderBy: { targetDev: "asc" } });
    expect(dataVolumes.map((v) => [v.targetDev, v.poolId])).toEqual([
      ["sda", host().poolId],
      ["sdb", dataPoolId],
    ]);
    const files = [path.join(host().poolDir, `${dataVolumes[0]!.id}.qcow2`), path.join(dataPoolDir, `${dataVolumes[1]!.id}.qcow2`)];
    for (const which of ["live", "config"] as const) {
      expect(await domainDisks(vmId, which)).toEqual({ vda: expect.any(String), sda: files[0], sdb: files[1] });
    }
    expect((await qemuImg("info", "-U", files[0]!))["virtual-size"]).toBe(GiB);
    expect((await qemuImg("info", "-U", files[1]!))["virtual-size"]).toBe(2 * GiB);
    for (const [i, volume] of dataVolumes.entries()) {
      expect((await system.request("GET", `/v1/volumes/${volume.id}`)).body).toMatchObject({
        state: "READY",
        sizeBytes: (i + 1) * GiB,
        hostId: host().id,
        attachment: { vmId, targetDev: volume.targetDev, boot: false },
      });
    }
  });

  test("without disks the boot flow's steps are unchanged", async () => {
    const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, name: "no-disks", poolId: host().poolId });
    const op = await completed(system, res);
    expect(op.steps.map((s: { name: string }) => s.name)).toEqual(BOOT_STEPS);
    await completed(system, await system.request("DELETE", `/v1/vms/${res.body.vmId}`));
  });

  test("deleteVm keeps the data disks: READY, detached, their files intact", async () => {
    await completed(system, await system.request("DELETE", `/v1/vms/${vmId}`));
    expect(await system.domainState(vmId)).toBeNull();
    for (const volume of dataVolumes) {
      expect((await system.request("GET", `/v1/volumes/${volume.id}`)).body).toMatchObject({ state: "READY", attachment: null });
    }
    expect(await poolFiles(host().poolDir)).toEqual([`${dataVolumes[0]!.id}.qcow2`]);
    expect(await poolFiles(dataPoolDir)).toEqual([`${dataVolumes[1]!.id}.qcow2`]);
    for (const volume of dataVolumes) await completed(system, await system.request("DELETE", `/v1/volumes/${volume.id}`));
    expect(await poolFiles(host().poolDir)).toEqual([]);
    expect(await poolFiles(dataPoolDir)).toEqual([]);
  });

  test("an unknown pool and too many disks are refused with 400", async () => {
    const unknown = await system.request("POST", "/v1/vms", { ...SMALL_VM, disks: [{ poolId: "no-such-pool", sizeGiB: 1 }] });
    expect({ status: unknown.status, code: unknown.body.code }).toEqual({ status: 400, code: "VALIDATION_FAILED" });
    const many = await system.request("POST", "/v1/vms", { ...SMALL_VM, disks: Array.from({ length: 9 }, () => ({ poolId: host().poolId, sizeGiB: 1 })) });
    expect(many.status).toBe(400);
    expect(await system.prisma.vm.count({ where: { name: SMALL_VM.name } })).toBe(0);
  });

  test("a failure at each step, data disk steps included, leaves a clean slate", async () => {
    let failed: { vmId: string; bootVolumeId: string } | undefined;
    await expectEachStepFailsCleanly(system, {
      steps: [
        { step: "validate", activity: "loadVm", side: "database" },
        { step: "place", activity: "placeVm", side: "database" },
        { step: "create-disk", activity: "createDisk", side: "host" },
        { step: "create-data-disk sda", activity: "createVolume", side: "host" },
        { step: "define-domain", activity: "defineDomain", side: "host" },
        { step: "start-domain", activity: "startDomain", side: "host" },
        { step: "wait-running", activity: "waitForDomainRunning", side: "host" },
        { step: "record", activity: "vmCreated", side: "database" },
      ],
      start: async () => {
        const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, name: "doomed", poolId: host().poolId, disks: disks() });
        const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId } });
        failed = { vmId: vm.id, bootVolumeId: vm.bootVolumeId };
        return res.body.operationId;
      },
      expectCleanSlate: async () => {
        await expectCleanSlate(system, failed!.vmId, failed!.bootVolumeId);
        expect(await system.prisma.volume.count()).toBe(0);
        expect(await poolFiles(host().poolDir)).toEqual([]);
        expect(await poolFiles(dataPoolDir)).toEqual([]);
      },
    });
  });
});
