import { expectNoFailedUndo } from "./assertions";
import { INJECTED_FAILURE_CODE, type Fault, type FaultVariant, type ObservedCall } from "./faults";
import type { TestSystem } from "./system";

/**
 * The failure sweep, omicron-style, shared by every workflow's tests. The step list is never written
 * by hand: a first, successful run records every activity with the step it ran for (the `qx-step`
 * header), and the sweep then aims at each step occurrence in turn (`create-data-disk sda` and `sdb`
 * separately) with three variants (faults.ts): fails before its work, fails after its work, fails
 * once and succeeds on retry. Before the point of no return the first two must end FAILED at that
 * step with no failed undo and a clean slate on the real systems; the third, and every variant past
 * the point of no return, must end COMPLETED with the result real. Then each undo in turn is made to
 * fail (with the last forward step failing after its work, so that every undo runs): the operation
 * records it, the leftover stays referenced and visible, and finishing the cleanup (a repeated
 * DELETE) leaves a clean slate.
 */
export interface SweepScenario {
  /** The workflow the operation runs (faults are aimed at its steps only). */
  workflowType: string;
  /** Makes what the operation needs (a VM to delete...), before any fault is armed. */
  prepare?(): Promise<void>;
  /** Starts the operation through the API, on fresh resources each time; returns its operation id. */
  start(): Promise<string>;
  /** After a COMPLETED run: the result is real on the real systems; then remove it for the next run. */
  afterSuccess(operation: any): Promise<void>;
  /** After a FAILED run: nothing of it is left on the real systems. */
  expectCleanSlate(operation: any): Promise<void>;
  /**
   * After a run whose undo of `undoStep` failed: what it left is referenced and visible through the
   * API; finish it (a repeated DELETE, a detach...) so that expectCleanSlate passes.
   */
  finishCleanup?(operation: any, undoStep: string): Promise<void>;
  /** Steps whose activities are not retried by design, so "once" cannot succeed: step → why. */
  notRetried?: Record<string, string>;
  /**
   * Sweeps only the steps (and undos) this accepts: for a suite whose other steps another suite
   * sweeps already (createVm with data disks sweeps its data disk steps; create-vm-failures the rest).
   */
  only?: (step: string) => boolean;
}

export interface StepOccurrence {
  step: string;
  /** Index of the step's last activity call: where "fails after its work" strikes. */
  lastCall: number;
  committed: boolean;
}

export interface SweepReport {
  steps: StepOccurrence[];
  undos: string[];
}

/** The steps (or undos) of one workflow, in the order they ran, from observed calls. */
export function occurrencesOf(calls: ObservedCall[], workflowType: string, kind: "STEP" | "UNDO"): StepOccurrence[] {
  const byStep = new Map<string, StepOccurrence>();
  for (const call of calls) {
    if (call.workflowType !== workflowType || call.kind !== kind) continue;
    const seen = byStep.get(call.step);
    if (seen) seen.lastCall = Math.max(seen.lastCall, call.call);
    else byStep.set(call.step, { step: call.step, lastCall: call.call, committed: call.committed });
  }
  return [...byStep.values()];
}

function failedStepsOf(operation: any, kind: "STEP" | "UNDO"): string[] {
  return operation.steps.filter((s: { kind: string; state: string }) => s.kind === kind && s.state === "FAILED").map((s: { name: string }) => s.name);
}

export async function sweepEveryStep(system: TestSystem, scenario: SweepScenario): Promise<SweepReport> {
  const { faults } = system;
  /** One run of the operation, with `armed` faults; `observed` gets the calls it made. */
  const run = async (armed: Fault[], observed?: ObservedCall[]) => {
    await scenario.prepare?.();
    faults.arm(...armed);
    if (observed) faults.observe();
    try {
      return await system.waitForOperation(await scenario.start());
    } finally {
      faults.clear();
      if (observed) observed.push(...faults.stopObserving());
    }
  };

  const referenceCalls: ObservedCall[] = [];
  const reference = await run([], referenceCalls);
  const steps = occurrencesOf(referenceCalls, scenario.workflowType, "STEP");
  expect(reference.state).toBe("COMPLETED");
  // Every step the operation recorded ran activities, so the sweep reaches each one.
  expect(steps.map((s) => s.step)).toEqual(reference.steps.filter((s: { kind: string }) => s.kind === "STEP").map((s: { name: string }) => s.name));
  await scenario.afterSuccess(reference);

  for (const occurrence of steps.filter((s) => scenario.only?.(s.step) ?? true)) {
    const variants: FaultVariant[] = ["before", "after", ...(scenario.notRetried?.[occurrence.step] ? [] : (["once"] as const))];
    for (const variant of variants) {
      const fault: Fault = { workflowType: scenario.workflowType, step: occurrence.step, variant, lastCall: occurrence.lastCall };
      const op = await run([fault]);
      const context = `${variant} at ${occurrence.step}${occurrence.committed ? " (past the point of no return)" : ""}`;
      expect({ context, fired: faults.firings(fault) > 0 }).toEqual({ context, fired: true });
      if (occurrence.committed || variant === "once") {
        expect({ context, state: op.state, error: op.error }).toEqual({ context, state: "COMPLETED", error: null });
        await scenario.afterSuccess(op);
      } else {
        expect({ context, state: op.state, code: op.error?.code, failed: failedStepsOf(op, "STEP") }).toEqual({
          context,
          state: "FAILED",
          code: INJECTED_FAILURE_CODE,
          failed: [occurrence.step],
        });
        expectNoFailedUndo(op);
        await scenario.expectCleanSlate(op);
      }
    }
  }

  // Failing undos: the last forward step fails after its work, so every registered undo runs.
  const lastForward = [...steps].reverse().find((s) => !s.committed);
  if (!lastForward || !scenario.finishCleanup) return { steps, undos: [] };
  const failLast: Fault = { workflowType: scenario.workflowType, step: lastForward.step, variant: "after", lastCall: lastForward.lastCall };
  const unwindCalls: ObservedCall[] = [];
  const unwound = await run([failLast], unwindCalls);
  const undos = occurrencesOf(unwindCalls, scenario.workflowType, "UNDO").map((u) => u.step);
  expect(unwound.state).toBe("FAILED");
  await scenario.expectCleanSlate(unwound);
  for (const undo of undos.filter((u) => scenario.only?.(u) ?? true)) {
    const op = await run([failLast, { workflowType: scenario.workflowType, step: undo, variant: "undo" }]);
    const context = `undo of ${undo} fails`;
    expect({ context, state: op.state, failedUndos: failedStepsOf(op, "UNDO") }).toEqual({ context, state: "FAILED", failedUndos: [undo] });
    expect(op.error.message).toContain(`undo failed: ${undo}`);
    await scenario.finishCleanup(op, undo);
    await scenario.expectCleanSlate(op);
  }
  return { steps, undos };
}
