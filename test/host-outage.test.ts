import { startTestSystem, type TestSystem } from "./support/system";
import { expectCleanSlate, expectNoFailedUndo } from "./support/assertions";

const SCHEDULE_TO_START_MS = 4_000;

describe("a host whose worker is down", () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem({ hostScheduleToStartMs: SCHEDULE_TO_START_MS });
  });
  afterAll(async () => {
    await system?.shutdown();
  });

  test("fails the create at the schedule-to-start timeout and compensates", async () => {
    const host = system.hosts[0]!;
    await system.stopHostWorker(host);
    try {
      const res = await system.request("POST", "/v1/vms", { name: "orphan", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 });
      const started = Date.now();
      const op = await system.waitForOperation(res.body.operationId);
      expect(Date.now() - started).toBeGreaterThanOrEqual(SCHEDULE_TO_START_MS - 500);
      expect(Date.now() - started).toBeLessThan(SCHEDULE_TO_START_MS + 10_000);
      expect(op).toMatchObject({ state: "FAILED", error: { code: "HOST_UNREACHABLE" } });
      expect(op.steps.find((s: { state: string }) => s.state === "FAILED")).toMatchObject({ name: "create-disk", kind: "STEP" });
      // The disk step never reached the host, so only the placement is undone.
      expect(op.steps.filter((s: { kind: string }) => s.kind === "UNDO").map((s: { name: string }) => s.name)).toEqual(["place"]);
      expectNoFailedUndo(op);
      const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId } });
      await expectCleanSlate(system, vm.id, vm.bootVolumeId);
    } finally {
      await system.startHostWorker(host);
    }
  });

  test("completes the create when the worker comes back in time", async () => {
    const host = system.hosts[0]!;
    await system.stopHostWorker(host);
    const res = await system.request("POST", "/v1/vms", { name: "patient", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 });
    await system.waitForOperation(res.body.operationId, (op) => op.currentStep === "create-disk");
    await new Promise((r) => setTimeout(r, 1_000));
    await system.startHostWorker(host);
    const op = await system.waitForOperation(res.body.operationId);
    expect(op.state).toBe("COMPLETED");
    expect(await system.domainState(res.body.vmId)).toBe("running");
  });
});
