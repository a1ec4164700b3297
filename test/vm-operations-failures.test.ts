import { startTestSystem, type TestSystem } from "./support/system";
import { diskPath, expectNoFailedUndo, fileExists } from "./support/assertions";
import { failingAt, INJECTED_FAILURE_CODE, type StepActivity } from "./support/step-failures";

const SMALL_VM = { vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };

/** deleteVm's runbook: no undo; a failed delete leaves the VM FAILED and a repeated DELETE finishes. */
const DELETE_VM_STEPS: StepActivity[] = [
  { step: "validate", activity: "loadVm", side: "database" },
  { step: "stop-domain", activity: "forceStopDomain", side: "host" },
  { step: "undefine-domain", activity: "undefineDomain", side: "host" },
  { step: "delete-disk", activity: "deleteDisk", side: "host" },
  { step: "release", activity: "releaseVm", side: "database" },
  { step: "record", activity: "vmDeleted", side: "database" },
];

/** powerVm's runbook per action: validate, the one host call, record. */
const POWER_STEPS: (StepActivity & { action: string; from: "RUNNING" | "STOPPED" })[] = [
  { action: "force-stop", from: "RUNNING", step: "validate", activity: "loadVm", side: "database" },
  { action: "force-stop", from: "RUNNING", step: "force-stop", activity: "forceStopDomain", side: "host" },
  { action: "reboot", from: "RUNNING", step: "reboot", activity: "rebootDomain", side: "host" },
  { action: "start", from: "STOPPED", step: "start", activity: "startDomain", side: "host" },
  { action: "start", from: "STOPPED", step: "record", activity: "vmStateChanged", side: "database" },
];

describe("deleteVm and powerVm on failure", () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem();
  });
  afterAll(async () => {
    await system?.shutdown();
  });

  const host = () => system.hosts[0]!;

  async function inject({ activity, side }: StepActivity): Promise<void> {
    if (side === "database") await system.restartControlPlane(failingAt(system.databaseActivities, activity));
    else await system.startHostWorker(host(), failingAt(host().runtime.activities, activity));
  }

  async function restore(): Promise<void> {
    await system.restartControlPlane();
    await system.startHostWorker(host());
  }

  async function runningVm(name: string) {
    const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, name });
    expect((await system.waitForOperation(res.body.operationId)).state).toBe("COMPLETED");
    return system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId } });
  }

  function failedAt(op: any, step: string): void {
    expect(op).toMatchObject({ state: "FAILED", error: { code: INJECTED_FAILURE_CODE } });
    expect(op.steps.filter((s: { state: string }) => s.state === "FAILED").map((s: { name: string }) => s.name)).toEqual([step]);
    expectNoFailedUndo(op);
  }

  test.each(DELETE_VM_STEPS)("delete failing at $step leaves the VM FAILED; DELETE again removes everything", async (failure) => {
    const vm = await runningVm(`del-${failure.step}`);
    await inject(failure);
    try {
      const first = await system.request("DELETE", `/v1/vms/${vm.id}`);
      failedAt(await system.waitForOperation(first.body.operationId), failure.step);
      expect(await system.prisma.vm.findUniqueOrThrow({ where: { id: vm.id } })).toMatchObject({ state: "FAILED", errorCode: INJECTED_FAILURE_CODE });
    } finally {
      await restore();
    }
    const again = await system.request("DELETE", `/v1/vms/${vm.id}`);
    expect((await system.waitForOperation(again.body.operationId)).state).toBe("COMPLETED");
    expect(await system.domainState(vm.id)).toBeNull();
    expect(await fileExists(diskPath(host(), vm.bootVolumeId))).toBe(false);
    expect(await system.prisma.vm.count({ where: { id: vm.id } })).toBe(0);
    expect(await system.prisma.volume.count({ where: { vmId: vm.id } })).toBe(0);
  });

  test.each(POWER_STEPS)("$action failing at $step ends FAILED with the VM in the state libvirt reports", async (failure) => {
    const vm = await runningVm(`pow-${failure.action}-${failure.step}`);
    if (failure.from === "STOPPED") {
      const stop = await system.request("POST", `/v1/vms/${vm.id}/actions/force-stop`);
      expect((await system.waitForOperation(stop.body.operationId)).state).toBe("COMPLETED");
    }
    await inject(failure);
    try {
      const res = await system.request("POST", `/v1/vms/${vm.id}/actions/${failure.action}`);
      const op = await system.waitForOperation(res.body.operationId);
      failedAt(op, failure.step);
      // With the database step broken, the failure path's own write fails too; the operation
      // still closes, and says so.
      if (failure.step === "record") expect(op.error.message).toContain("recording the outcome failed");
    } finally {
      await restore();
    }
    const libvirt = await system.domainState(vm.id);
    const row = await system.prisma.vm.findUniqueOrThrow({ where: { id: vm.id } });
    // A failed record step cannot write the new state; every other failure leaves the truth.
    if (failure.step !== "record") expect(row.state).toBe(libvirt === "running" ? "RUNNING" : "STOPPED");
    else expect(row.state).toBe(failure.from);
    const del = await system.request("DELETE", `/v1/vms/${vm.id}`);
    expect((await system.waitForOperation(del.body.operationId)).state).toBe("COMPLETED");
  });
});
