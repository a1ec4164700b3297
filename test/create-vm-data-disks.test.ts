import path from "node:path";
import { startTestSystem, type TestSystem } from "./support/system";
import { expectCleanSlate, expectPendingCleanup } from "./support/assertions";
import { sweepEveryStep } from "./support/sweep";
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

  test("failure sweep: each data disk step (sda and sdb separately) fails before/after its work and once; each of their undos fails", async () => {
    const vms = new Map<string, { bootVolumeId: string; data: string[] }>();
    let runs = 0;
    const poolsClean = async () => {
      expect(await poolFiles(host().poolDir)).toEqual([]);
      expect(await poolFiles(dataPoolDir)).toEqual([]);
    };
    const report = await sweepEveryStep(system, {
      workflowType: "createVm",
      // The other steps of createVm are swept by create-vm-failures.test.ts.
      only: (step) => step.startsWith("create-data-disk"),
      async start() {
        const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, name: `disks-${++runs}`, poolId: host().poolId, disks: disks() });
        expect(res.status).toBe(202);
        const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId }, include: { volumes: true } });
        vms.set(vm.id, { bootVolumeId: vm.bootVolumeId, data: vm.volumes.map((v) => v.id) });
        return res.body.operationId;
      },
      async afterSuccess(op) {
        const made = vms.get(op.target.id)!;
        expect(await system.domainState(op.target.id)).toBe("running");
        await completed(system, await system.request("DELETE", `/v1/vms/${op.target.id}`));
        // Data disks outlive their VM: delete them too.
        for (const id of made.data) await completed(system, await system.request("DELETE", `/v1/volumes/${id}`));
        await expectCleanSlate(system, op.target.id, made.bootVolumeId, made.data);
        await poolsClean();
      },
      async expectCleanSlate(op) {
        const made = vms.get(op.target.id)!;
        await expectCleanSlate(system, op.target.id, made.bootVolumeId, made.data);
        await poolsClean();
      },
      async finishCleanup(op, undoStep) {
        const made = vms.get(op.target.id)!;
        const vm = (await system.request("GET", `/v1/vms/${op.target.id}`)).body;
        expectPendingCleanup(vm, undoStep);
        if (undoStep.startsWith("create-data-disk")) {
          // The data disk the undo could not remove is a volume in ERROR of its own, detached, its DELETE finishes it.
          const left = (await system.request("GET", "/v1/volumes")).body.items.filter((v: { state: string }) => v.state === "ERROR");
          expect(left).toHaveLength(1);
          expect(left[0]).toMatchObject({ attachment: null, cleanup: { failed: [expect.objectContaining({ step: undoStep })] } });
          expect(made.data).toContain(left[0].id);
          await completed(system, await system.request("DELETE", `/v1/volumes/${left[0].id}`));
        }
        await completed(system, await system.request("DELETE", `/v1/vms/${op.target.id}`));
      },
    });
    expect(report.steps.map((s) => s.step)).toEqual([
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
  }, 600_000);
});
