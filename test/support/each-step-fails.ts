import { expectNoFailedUndo } from "./assertions";
import { failingAt, INJECTED_FAILURE_CODE, type StepActivity } from "./step-failures";
import type { TestHost, TestSystem } from "./system";

/**
 * Runs the omicron-style failure sweep with the shared helpers of step-failures.ts: for each step
 * of a workflow in turn, the worker running its activity is restarted with that activity failing
 * (non-retryably), the operation is started through the API, and the test checks it FAILED at that
 * step with the injected code, that no undo failed, and that the real system is a clean slate.
 * The real workers are put back after each step.
 */
export interface StepFailureSweep {
  steps: StepActivity[];
  /** Starts the operation through the API; returns its id. */
  start(): Promise<string>;
  /** The real system holds nothing of the failed operation (files, rows, libvirt devices). */
  expectCleanSlate(): Promise<void>;
}

export async function expectEachStepFailsCleanly(system: TestSystem, sweep: StepFailureSweep, host: TestHost = system.hosts[0]!): Promise<void> {
  for (const { step, activity, side } of sweep.steps) {
    if (side === "database") await system.restartControlPlane(failingAt(system.databaseActivities, activity));
    else await system.startHostWorker(host, failingAt(host.runtime.activities, activity));
    try {
      const op = await system.waitForOperation(await sweep.start());
      const context = `failing ${activity} (step ${step})`;
      const failedSteps = op.steps.filter((s: { kind: string; state: string }) => s.kind === "STEP" && s.state === "FAILED").map((s: { name: string }) => s.name);
      expect({ context, state: op.state, code: op.error?.code, failedSteps }).toEqual({ context, state: "FAILED", code: INJECTED_FAILURE_CODE, failedSteps: [step] });
      expect(op.error.message).toContain(`injected failure in ${activity}`);
      expectNoFailedUndo(op);
      await sweep.expectCleanSlate();
    } finally {
      if (side === "database") await system.restartControlPlane();
      else await system.startHostWorker(host);
    }
  }
}

/** One failing activity for a single operation (recover-forward workflows), with the real workers put back after. */
export async function withFailingActivity<T>(system: TestSystem, { activity, side }: Omit<StepActivity, "step">, run: () => Promise<T>, host: TestHost = system.hosts[0]!): Promise<T> {
  if (side === "database") await system.restartControlPlane(failingAt(system.databaseActivities, activity));
  else await system.startHostWorker(host, failingAt(host.runtime.activities, activity));
  try {
    return await run();
  } finally {
    if (side === "database") await system.restartControlPlane();
    else await system.startHostWorker(host);
  }
}
