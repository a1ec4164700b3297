import { hostTaskQueue } from "../common/task-queues";
import { diskPath, expectCleanSlate, expectNoFailedUndo, fileExists } from "./support/assertions";
import { killDuringStep, nextTransitionAfter, range, recordedSteps, StepMissed, stepsOnQueue, type Kill, type RecordedOperation } from "./support/kill-at-each-step";
import type { RealProcess } from "./support/processes";
import { startProcessSystem, type ProcessSystem } from "./support/process-system";

/**
 * SIGKILL (never a graceful stop) of each real process at each step of createVm and deleteVm, on
 * the real Temporal, PostgreSQL and libvirt. The steps come from a successful run; each kill asserts
 * the outcome, the recovery time on the operation's own timeline and a clean slate.
 */
const VM = { name: "kill-me", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };
// Issue 7's goals on this machine: a host step is retried within 10 s of its worker's death; the
// operation moves on within 3 s of a control-plane worker's restart.
const HOST_KILL_TO_NEXT_STEP_MS = 10_000;
const CONTROL_PLANE_READY_TO_NEXT_STEP_MS = 3_000;

describe("processes SIGKILLed at each step", () => {
  let system: ProcessSystem;
  let createSteps: string[];
  let deleteSteps: string[];
  let hostCreateSteps: Set<string>;
  let hostDeleteSteps: Set<string>;
  const measured: Record<string, number[]> = {};

  const host = () => system.hosts[0]!;

  async function startCreate(): Promise<string> {
    const res = await system.request("POST", "/v1/vms", VM);
    expect(res.status).toBe(202);
    return res.body.operationId;
  }

  async function runningVm(): Promise<string> {
    const op = await system.waitForOperation(await startCreate());
    expect(op.state).toBe("COMPLETED");
    return op.target.id;
  }

  async function startDelete(vmId: string): Promise<string> {
    const res = await system.request("DELETE", `/v1/vms/${vmId}`);
    expect(res.status).toBe(202);
    return res.body.operationId;
  }

  /** The VM runs once, on its one disk, and deleting it leaves nothing behind. */
  async function expectCreatedOnceThenClean(vmId: string): Promise<void> {
    expect(await system.domainState(vmId)).toBe("running");
    const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: vmId } });
    expect(await fileExists(diskPath(host(), vm.bootVolumeId))).toBe(true);
    expect((await system.request("GET", "/v1/hosts")).body.items[0].allocated).toEqual({ vcpus: VM.vcpus, memoryMiB: VM.memoryMiB });
    const deleted = await system.waitForOperation(await startDelete(vmId));
    expect(deleted.state).toBe("COMPLETED");
    await expectCleanSlate(system, vmId, vm.bootVolumeId);
  }

  /** A running VM made anew for each try of a delete, and the check that the delete left nothing of it. */
  function freshVm() {
    let vmId = "";
    let bootVolumeId = "";
    return {
      async startDelete() {
        vmId = await runningVm();
        bootVolumeId = (await system.prisma.vm.findUniqueOrThrow({ where: { id: vmId } })).bootVolumeId;
        return startDelete(vmId);
      },
      expectGone: () => expectCleanSlate(system, vmId, bootVolumeId),
    };
  }

  /**
   * Starts the operation and kills `target` at `step`; a kill that must catch the step's activity
   * in the worker's hands but came too late (the step had finished) is tried again on a new one.
   */
  async function killAt(
    step: string,
    target: RealProcess,
    holdsActivity: boolean,
    start: () => Promise<string>,
    afterMiss: (op: RecordedOperation) => Promise<void>,
    whileDead?: (operationId: string) => Promise<void>,
  ) {
    for (let attempt = 1; ; attempt++) {
      const operationId = await start();
      let kill: Kill;
      try {
        kill = await killDuringStep(system, operationId, step, target, { holdsActivity, restart: !whileDead });
      } catch (err) {
        if (!target.running) await target.start();
        if (!(err instanceof StepMissed) || attempt === 3) throw err;
        await afterMiss(await system.waitForOperation(operationId));
        continue;
      }
      if (whileDead) {
        await whileDead(operationId);
        await target.start();
        kill.readyAt = target.readyAt;
      }
      const op: RecordedOperation = await system.waitForOperation(operationId);
      return { kill, op };
    }
  }

  function note(what: string, ms: number) {
    (measured[what] ??= []).push(ms);
  }

  beforeAll(async () => {
    system = await startProcessSystem();
    // One undisturbed run of each workflow: its recorded steps are the sweep's list.
    const created: RecordedOperation = await system.waitForOperation(await startCreate());
    const deleted: RecordedOperation = await system.waitForOperation(await startDelete((created as any).target.id));
    createSteps = recordedSteps(created);
    deleteSteps = recordedSteps(deleted);
    hostCreateSteps = await stepsOnQueue(system.temporal, created, hostTaskQueue(host().id));
    hostDeleteSteps = await stepsOnQueue(system.temporal, deleted, hostTaskQueue(host().id));
  }, 120_000);

  afterAll(async () => {
    for (const [what, values] of Object.entries(measured)) console.log(`recovery ${what}: ${range(values)}`);
    await system?.shutdown();
  });

  test("the sweep's steps come from the workflows' runs", () => {
    expect(createSteps).toContain("create-disk");
    expect([...hostCreateSteps]).toEqual(expect.arrayContaining(["create-disk", "define-domain", "start-domain", "wait-running"]));
    expect(hostCreateSteps.has("place")).toBe(false);
    expect([...hostDeleteSteps]).toEqual(expect.arrayContaining(["stop-domain", "undefine-domain", "delete-disk"]));
  });

  test("host worker killed at each step of createVm: the step runs again within 10 s, the VM is made once", async () => {
    for (const step of createSteps) {
      const holds = hostCreateSteps.has(step);
      const { kill, op } = await killAt(step, host().worker, holds, startCreate, async (missed) => expectCreatedOnceThenClean((missed as any).target.id));
      expect({ step, state: op.state }).toEqual({ step, state: "COMPLETED" });
      expectNoFailedUndo(op as never);
      const recovery = nextTransitionAfter(op, kill.killedAt) - kill.killedAt;
      if (holds) {
        note("host worker kill → next step (createVm)", recovery);
        expect({ step, recovery: recovery <= HOST_KILL_TO_NEXT_STEP_MS }).toEqual({ step, recovery: true });
      }
      await expectCreatedOnceThenClean((op as any).target.id);
    }
  }, 600_000);

  test("host worker killed at each step of deleteVm: the delete finishes and leaves nothing", async () => {
    for (const step of deleteSteps) {
      const vm = freshVm();
      const holds = hostDeleteSteps.has(step);
      const { kill, op } = await killAt(step, host().worker, holds, vm.startDelete, async () => undefined);
      expect({ step, state: op.state }).toEqual({ step, state: "COMPLETED" });
      const recovery = nextTransitionAfter(op, kill.killedAt) - kill.killedAt;
      if (holds) {
        note("host worker kill → next step (deleteVm)", recovery);
        expect({ step, recovery: recovery <= HOST_KILL_TO_NEXT_STEP_MS }).toEqual({ step, recovery: true });
      }
      await vm.expectGone();
    }
  }, 600_000);

  test("a cancel sent while the step's host worker is dead is shown at once and ends CANCELLED, undone, within 10 s of its return", async () => {
    // The last host step of createVm: every earlier step has an undo to run on the restarted host.
    const step = createSteps.filter((s) => hostCreateSteps.has(s)).at(-1)!;
    let vmId = "";
    const { kill, op } = await killAt(step, host().worker, true, startCreate, async (missed) => expectCreatedOnceThenClean((missed as any).target.id), async (operationId) => {
      const cancel = await system.request("POST", `/v1/operations/${operationId}/cancel`);
      expect(cancel.status).toBe(202);
      const seen = (await system.request("GET", `/v1/operations/${operationId}`)).body;
      expect(seen).toMatchObject({ state: "RUNNING", cancelRequestedAt: expect.any(String) });
      vmId = seen.target.id;
      // The host stays down past its heartbeat timeout: the step's attempt times out while the cancel waits.
      await new Promise((r) => setTimeout(r, 6_000));
    });
    expect(op).toMatchObject({ state: "CANCELLED", error: { code: "CANCELLED" } });
    expectNoFailedUndo(op as never);
    const undone = op.steps.filter((s) => s.kind === "UNDO").map((s) => s.name);
    expect(undone).toEqual(expect.arrayContaining(["create-disk", "place"]));
    const fromReady = Date.parse(op.finishedAt!) - kill.readyAt;
    note("host worker back → cancel done", fromReady);
    expect(fromReady).toBeLessThanOrEqual(10_000);
    const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: vmId } });
    await expectCleanSlate(system, vmId, vm.bootVolumeId);
  }, 120_000);

  test("control-plane worker killed at each step of createVm: the next step within 3 s of its restart", async () => {
    for (const step of createSteps) {
      const { kill, op } = await killAt(step, system.controlPlane, false, startCreate, async () => undefined);
      expect({ step, state: op.state }).toEqual({ step, state: "COMPLETED" });
      expectNoFailedUndo(op as never);
      const fromReady = nextTransitionAfter(op, kill.readyAt) - kill.readyAt;
      note("control-plane restart → next step (createVm)", fromReady);
      note("control-plane kill → next step (createVm)", nextTransitionAfter(op, kill.killedAt) - kill.killedAt);
      expect({ step, fromReady: fromReady <= CONTROL_PLANE_READY_TO_NEXT_STEP_MS }).toEqual({ step, fromReady: true });
      await expectCreatedOnceThenClean((op as any).target.id);
    }
  }, 600_000);

  test("control-plane worker killed at each step of deleteVm: the next step within 3 s of its restart", async () => {
    for (const step of deleteSteps) {
      const vm = freshVm();
      const { kill, op } = await killAt(step, system.controlPlane, false, vm.startDelete, async () => undefined);
      expect({ step, state: op.state }).toEqual({ step, state: "COMPLETED" });
      const fromReady = nextTransitionAfter(op, kill.readyAt) - kill.readyAt;
      note("control-plane restart → next step (deleteVm)", fromReady);
      note("control-plane kill → next step (deleteVm)", nextTransitionAfter(op, kill.killedAt) - kill.killedAt);
      expect({ step, fromReady: fromReady <= CONTROL_PLANE_READY_TO_NEXT_STEP_MS }).toEqual({ step, fromReady: true });
      await vm.expectGone();
    }
  }, 600_000);
});
