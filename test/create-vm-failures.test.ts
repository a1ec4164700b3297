import { startTestSystem, type TestSystem } from "./support/system";
import { expectCleanSlate, expectNoFailedUndo, expectPendingCleanup } from "./support/assertions";
import { INJECTED_FAILURE_CODE } from "./support/faults";
import { delayedWithHeartbeats, runningTwice } from "./support/step-failures";
import { sweepEveryStep, type SweepScenario } from "./support/sweep";

const SMALL_VM = { name: "saga-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };
// With access settings createVm builds a seed ISO too: the sweep reaches build-seed-iso.
const WITH_SEED = { ...SMALL_VM, access: { sshAuthorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl sweep@test"] } };

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

  async function deleteVm(vmId: string) {
    const del = await system.request("DELETE", `/v1/vms/${vmId}`);
    expect(del.status).toBe(202);
    return system.waitForOperation(del.body.operationId);
  }

  const createVmScenario = (body: object): SweepScenario => {
    const bootVolumes = new Map<string, string>();
    let runs = 0;
    return {
      workflowType: "createVm",
      async start() {
        const res = await system.request("POST", "/v1/vms", { ...body, name: `sweep-${++runs}` });
        expect(res.status).toBe(202);
        const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId } });
        bootVolumes.set(vm.id, vm.bootVolumeId);
        return res.body.operationId;
      },
      async afterSuccess(op) {
        const vm = (await system.request("GET", `/v1/vms/${op.target.id}`)).body;
        expect({ state: vm.state, domain: await system.domainState(vm.id), cleanup: vm.cleanup }).toEqual({ state: "RUNNING", domain: "running", cleanup: null });
        expect((await deleteVm(vm.id)).state).toBe("COMPLETED");
        await expectCleanSlate(system, vm.id, bootVolumes.get(vm.id)!);
      },
      async expectCleanSlate(op) {
        await expectCleanSlate(system, op.target.id, bootVolumes.get(op.target.id)!);
      },
      async finishCleanup(op, undoStep) {
        const vm = (await system.request("GET", `/v1/vms/${op.target.id}`)).body;
        expectPendingCleanup(vm, undoStep);
        // The trail: the VM keeps its host (and so its capacity) while anything is left there.
        expect(vm.hostId).toBe(system.hosts[0]!.id);
        expect((await deleteVm(vm.id)).state).toBe("COMPLETED");
        expect((await system.request("GET", `/v1/vms/${vm.id}`)).status).toBe(404);
      },
    };
  };

  test("failure sweep: every step of createVm (with a seed ISO) fails before and after its work and once; every undo fails in turn", async () => {
    const report = await sweepEveryStep(system, createVmScenario(WITH_SEED));
    expect(report.steps.map((s) => s.step)).toEqual(["validate", "place", "create-disk", "build-seed-iso", "define-domain", "start-domain", "wait-running", "record"]);
    expect(report.steps.find((s) => s.step === "record")?.committed).toBe(true);
    expect(report.undos).toEqual(["start-domain", "define-domain", "build-seed-iso", "create-disk", "place"]);
  }, 600_000);

  test("a failure of the final record write leaves the VM RUNNING and the operation COMPLETED", async () => {
    const fault = { workflowType: "createVm", step: "record", variant: "before" as const };
    system.faults.arm(fault);
    try {
      const { op, vm } = await createAndWait("record-fails");
      expect(system.faults.firings(fault)).toBeGreaterThan(0);
      expect(op).toMatchObject({ state: "COMPLETED", error: null });
      expect(vm.state).toBe("RUNNING");
      expect(await system.domainState(vm.id)).toBe("running");
      expect(op.steps.filter((s: { kind: string }) => s.kind === "UNDO")).toEqual([]);
      expect((await deleteVm(vm.id)).state).toBe("COMPLETED");
    } finally {
      system.faults.clear();
    }
  });

  test("every step and every undo is idempotent: all activities run twice, then the create fails after its last step", async () => {
    const host = system.hosts[0]!;
    await system.startHostWorker(host, runningTwice(host.runtime.activities));
    await system.restartControlPlane(runningTwice(system.databaseActivities));
    system.faults.arm({ workflowType: "createVm", step: "wait-running", variant: "after" });
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
      system.faults.clear();

      const ok = await createAndWait("twice-ok");
      expect(ok.op.state).toBe("COMPLETED");
      expect(await system.domainState(ok.vm.id)).toBe("running");
      expect((await deleteVm(ok.vm.id)).state).toBe("COMPLETED");
    } finally {
      system.faults.clear();
      await restoreWorkers();
    }
  });

  describe("an undo aimed at a host that is down", () => {
    // Short enough for a test, and the outage longer than schedule-to-start: only the saga's own
    // retry (Temporal never retries a schedule-to-start timeout) can bring the undo through.
    const saved = { hostScheduleToStartMs: 0, undoDeadlineMs: 0 };
    beforeAll(() => {
      Object.assign(saved, { hostScheduleToStartMs: system.config.hostScheduleToStartMs, undoDeadlineMs: system.config.undoDeadlineMs });
      Object.assign(system.config, { hostScheduleToStartMs: 2_000, undoDeadlineMs: 9_000 });
    });
    afterAll(() => {
      Object.assign(system.config, saved);
    });

    /** create-disk fails after its work and the host worker goes away at that moment. */
    async function createWhileHostGoesAway(name: string) {
      const host = system.hosts[0]!;
      let away: Promise<void> = Promise.resolve();
      system.faults.arm({ workflowType: "createVm", step: "create-disk", variant: "after", onFire: () => void (away = system.stopHostWorker(host)) });
      const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, name });
      expect(res.status).toBe(202);
      await system.waitForOperation(res.body.operationId, (op) => op.currentStep === "undo create-disk");
      await away;
      system.faults.clear();
      return res.body as { operationId: string; vmId: string };
    }

    test("back before the undo deadline: the undo waits for it and completes, nothing is left", async () => {
      const host = system.hosts[0]!;
      try {
        const started = await createWhileHostGoesAway("host-back");
        await new Promise((r) => setTimeout(r, 4_000)); // away longer than schedule-to-start
        await system.startHostWorker(host);
        const op = await system.waitForOperation(started.operationId);
        expect(op.state).toBe("FAILED");
        expectNoFailedUndo(op);
        const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: started.vmId } });
        await expectCleanSlate(system, vm.id, vm.bootVolumeId);
      } finally {
        system.faults.clear();
        await restoreWorkers();
      }
    }, 120_000);

    test("away past the deadline: the undo is recorded failed, the VM is ERROR with what is left, and DELETE finishes", async () => {
      const host = system.hosts[0]!;
      let started: { operationId: string; vmId: string };
      try {
        started = await createWhileHostGoesAway("host-away");
        const op = await system.waitForOperation(started.operationId, undefined, 60_000);
        expect(op.state).toBe("FAILED");
        expect(op.steps.filter((s: { kind: string; state: string }) => s.kind === "UNDO" && s.state === "FAILED")).toMatchObject([
          { name: "create-disk", error: { code: "HOST_UNREACHABLE" } },
        ]);
        const vm = (await system.request("GET", `/v1/vms/${started.vmId}`)).body;
        expectPendingCleanup(vm, "create-disk");
        expect(vm.cleanup.remains).toEqual([{ kind: "volume", hostId: host.id, poolId: host.poolId, volumeId: vm.bootVolumeId }]);
        expect(vm.hostId).toBe(host.id);
        // The disk the undo could not remove is still on the host, and its row still references it.
        expect((await system.prisma.volume.findUniqueOrThrow({ where: { id: vm.bootVolumeId } })).state).toBe("ERROR");
      } finally {
        system.faults.clear();
        await restoreWorkers();
      }
      const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: started.vmId } });
      expect((await deleteVm(vm.id)).state).toBe("COMPLETED");
      await expectCleanSlate(system, vm.id, vm.bootVolumeId);
    }, 120_000);
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
