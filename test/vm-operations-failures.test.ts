import { startTestSystem, type TestSystem } from "./support/system";
import { expectCleanSlate } from "./support/assertions";
import { sweepEveryStep } from "./support/sweep";

const SMALL_VM = { vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };

describe("deleteVm and powerVm on failure", () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem();
  });
  afterAll(async () => {
    await system?.shutdown();
  });

  let made = 0;
  async function runningVm() {
    const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, name: `ops-${++made}` });
    expect((await system.waitForOperation(res.body.operationId)).state).toBe("COMPLETED");
    return system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId } });
  }

  async function deleteVm(vmId: string) {
    const del = await system.request("DELETE", `/v1/vms/${vmId}`);
    expect(del.status).toBe(202);
    return system.waitForOperation(del.body.operationId);
  }

  test("deleteVm sweep: a delete failing anywhere leaves the VM in ERROR with what is left (or untouched); DELETE again removes everything", async () => {
    const bootVolumes = new Map<string, string>();
    let next: string;
    const report = await sweepEveryStep(system, {
      workflowType: "deleteVm",
      async prepare() {
        const vm = await runningVm();
        bootVolumes.set(vm.id, vm.bootVolumeId);
        next = vm.id;
      },
      async start() {
        return (await system.request("DELETE", `/v1/vms/${next}`)).body.operationId;
      },
      async afterSuccess(op) {
        await expectCleanSlate(system, op.target.id, bootVolumes.get(op.target.id)!);
        expect(await system.prisma.vm.count({ where: { id: op.target.id } })).toBe(0);
      },
      async expectCleanSlate(op) {
        const vm = (await system.request("GET", `/v1/vms/${op.target.id}`)).body;
        const failedAt = op.steps.find((s: { state: string }) => s.state === "FAILED").name;
        if (failedAt === "validate" && vm.state === "RUNNING") {
          // Failed before it marked the VM DELETING: the VM is as it was.
          expect(vm.cleanup).toBeNull();
        } else if (failedAt === "release" && vm.hostId === null) {
          // Released, then the step failed: nothing is left on any host, so nothing is pending.
          expect({ state: vm.state, cleanup: vm.cleanup }).toEqual({ state: "FAILED", cleanup: null });
          expect(await system.domainState(vm.id)).toBeNull();
        } else {
          expect({ state: vm.state, failed: vm.cleanup?.failed.map((f: { step: string }) => f.step) }).toEqual({ state: "ERROR", failed: [failedAt] });
          expect(vm.cleanup.remains).toContainEqual({ kind: "domain", hostId: system.hosts[0]!.id, vmId: vm.id });
          expect(vm.hostId).toBe(system.hosts[0]!.id);
        }
        expect((await deleteVm(vm.id)).state).toBe("COMPLETED");
        await expectCleanSlate(system, vm.id, bootVolumes.get(vm.id)!);
      },
    });
    expect(report.steps.map((s) => s.step)).toEqual(["validate", "stop-domain", "undefine-domain", "delete-disk", "release", "record"]);
  }, 600_000);

  test("powerVm sweep: force-stop, start and reboot failing anywhere end with the VM in the state libvirt reports", async () => {
    const vm = await runningVm();
    const expectStateOfLibvirt = async () => {
      const row = await system.prisma.vm.findUniqueOrThrow({ where: { id: vm.id } });
      const libvirt = await system.domainState(vm.id);
      expect({ row: row.state, libvirt }).toEqual({ row: libvirt === "running" ? "RUNNING" : "STOPPED", libvirt });
    };
    for (const action of ["force-stop", "start", "reboot"] as const) {
      await sweepEveryStep(system, {
        workflowType: "powerVm",
        async prepare() {
          const row = await system.prisma.vm.findUniqueOrThrow({ where: { id: vm.id } });
          const needs = action === "start" ? "STOPPED" : "RUNNING";
          if (row.state !== needs) {
            const res = await system.request("POST", `/v1/vms/${vm.id}/actions/${needs === "STOPPED" ? "force-stop" : "start"}`);
            expect((await system.waitForOperation(res.body.operationId)).state).toBe("COMPLETED");
          }
        },
        async start() {
          return (await system.request("POST", `/v1/vms/${vm.id}/actions/${action}`)).body.operationId;
        },
        afterSuccess: expectStateOfLibvirt,
        expectCleanSlate: expectStateOfLibvirt,
      });
    }
    expect((await deleteVm(vm.id)).state).toBe("COMPLETED");
  }, 600_000);
});
