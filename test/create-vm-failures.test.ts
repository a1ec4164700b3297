import { startTestSystem, type TestSystem } from "./support/system";
import { expectCleanSlate, expectNoFailedUndo } from "./support/assertions";
import { delayedWithHeartbeats, failingAt, INJECTED_FAILURE_CODE, runningTwice, type StepActivity } from "./support/step-failures";

const SMALL_VM = { name: "saga-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };

/** createVm's runbook: each step and the activity that performs it. */
const CREATE_VM_STEPS: StepActivity[] = [
  { step: "validate", activity: "loadVm", side: "database" },
  { step: "place", activity: "placeVm", side: "database" },
  { step: "create-disk", activity: "createDisk", side: "host" },
  { step: "define-domain", activity: "defineDomain", side: "host" },
  { step: "start-domain", activity: "startDomain", side: "host" },
  { step: "wait-running", activity: "waitForDomainRunning", side: "host" },
  { step: "record", activity: "vmCreated", side: "database" },
];

describe("createVm compensation on real libvirt, disks and PostgreSQL", () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem();
  });
  afterAll(async () => {
    await system?.shutdown();
  });

  async function restoreWorkers(): Promise<void> {
    await system.restartControlPlane();
    await system.startHostWorker(system.hosts[0]!);
  }

  async function createAndWait(name: string) {
    const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, name });
    expect(res.status).toBe(202);
    const op = await system.waitForOperation(res.body.operationId);
    const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId } });
    return { op, vm };
  }

  test.each(CREATE_VM_STEPS)("a failure at $step ($activity) leaves nothing behind", async ({ step, activity, side }) => {
    const host = system.hosts[0]!;
    if (side === "database") await system.restartControlPlane(failingAt(system.databaseActivities, activity));
    else await system.startHostWorker(host, failingAt(host.runtime.activities, activity));
    try {
      const { op, vm } = await createAndWait(`fail-${step}`);
      expect(op).toMatchObject({ state: "FAILED", error: { code: INJECTED_FAILURE_CODE } });
      const failedSteps = op.steps.filter((s: { kind: string; state: string }) => s.kind === "STEP" && s.state === "FAILED");
      expect(failedSteps.map((s: { name: string }) => s.name)).toEqual([step]);
      expectNoFailedUndo(op);
      expect(vm).toMatchObject({ state: "FAILED", errorCode: INJECTED_FAILURE_CODE, hostId: null });
      await expectCleanSlate(system, vm.id, vm.bootVolumeId);
    } finally {
      await restoreWorkers();
    }
  });

  test("every step and every undo is idempotent: all activities run twice, then the create fails at its last step", async () => {
    const host = system.hosts[0]!;
    await system.startHostWorker(host, runningTwice(host.runtime.activities));
    await system.restartControlPlane(failingAt(runningTwice(system.databaseActivities), "vmCreated"));
    try {
      const { op, vm } = await createAndWait("twice-fail");
      expect(op).toMatchObject({ state: "FAILED", error: { code: INJECTED_FAILURE_CODE } });
      expect(op.steps.filter((s: { kind: string }) => s.kind === "UNDO").map((s: { name: string }) => s.name)).toEqual([
        "start-domain",
        "define-domain",
        "create-disk",
        "place",
      ]);
      expectNoFailedUndo(op);
      await expectCleanSlate(system, vm.id, vm.bootVolumeId);

      await system.restartControlPlane(runningTwice(system.databaseActivities));
      const ok = await createAndWait("twice-ok");
      expect(ok.op.state).toBe("COMPLETED");
      expect(await system.domainState(ok.vm.id)).toBe("running");
      const del = await system.request("DELETE", `/v1/vms/${ok.vm.id}`);
      expect((await system.waitForOperation(del.body.operationId)).state).toBe("COMPLETED");
    } finally {
      await restoreWorkers();
    }
  });

  test("cancelling mid-way undoes the completed steps and ends CANCELLED", async () => {
    const host = system.hosts[0]!;
    await system.startHostWorker(host, delayedWithHeartbeats(host.runtime.activities, "startDomain", 20_000));
    try {
      const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, name: "cancel-me" });
      await system.waitForOperation(res.body.operationId, (op) => op.currentStep === "start-domain");
      expect(await system.domainState(res.body.vmId)).toBe("shut off"); // defined, not started: mid-way
      const cancelledAt = Date.now();
      const cancel = await system.request("POST", `/v1/operations/${res.body.operationId}/cancel`);
      expect(cancel.status).toBe(202);
      const op = await system.waitForOperation(res.body.operationId);
      expect(Date.now() - cancelledAt).toBeLessThan(10_000);
      expect(op).toMatchObject({ state: "CANCELLED", error: { code: "CANCELLED" } });
      expectNoFailedUndo(op);
      const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId } });
      await expectCleanSlate(system, vm.id, vm.bootVolumeId);

      const again = await system.request("POST", `/v1/operations/${res.body.operationId}/cancel`);
      expect(again.status).toBe(409);
    } finally {
      await restoreWorkers();
    }
  });
});
