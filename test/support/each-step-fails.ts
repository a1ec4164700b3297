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

/** Restarts the worker that runs `activity` with it failing (the control plane for database and Northbound steps). */
async function injectFailure(system: TestSystem, { activity, side }: Omit<StepActivity, "step">, host: TestHost): Promise<void> {
  if (side === "database") await system.restartControlPlane(failingAt(system.databaseActivities, activity));
  else if (side === "network") await system.restartControlPlane(undefined, failingAt(system.networkActivities, activity));
  else await system.startHostWorker(host, failingAt(host.runtime.activities, activity));
}

async function restoreWorker(system: TestSystem, side: StepActivity["side"], host: TestHost): Promise<void> {
  if (side === "host") await system.startHostWorker(host);
  else await system.restartControlPlane();
}

export async function expectEachStepFailsCleanly(system: TestSystem, sweep: StepFailureSweep, host: TestHost = system.hosts[0]!): Promise<void> {
  for (const { step, activity, side } of sweep.steps) {
    await injectFailure(system, { activity, side }, host);
    try {
      const op = await system.waitForOperation(await sweep.start());
      const context = `failing ${activity} (step ${step})`;
      const failedSteps = op.steps.filter((s: { kind: string; state: string }) => s.kind === "STEP" && s.state === "FAILED").map((s: { name: string }) => s.name);
      expect({ context, state: op.state, code: op.error?.code, failedSteps }).toEqual({ context, state: "FAILED", code: INJECTED_FAILURE_CODE, failedSteps: [step] });
      expect(op.error.message).toContain(`injected failure in ${activity}`);
      expectNoFailedUndo(op);
      await sweep.expectCleanSlate();
    } finally {
      await restoreWorker(system, side, host);
    }
  }
}

/** One failing activity for a single operation (recover-forward workflows), with the real workers put back after. */
export async function withFailingActivity<T>(system: TestSystem, { activity, side }: Omit<StepActivity, "step">, run: () => Promise<T>, host: TestHost = system.hosts[0]!): Promise<T> {
  await injectFailure(system, { activity, side }, host);
  try {
    return await run();
  } finally {
    await restoreWorker(system, side, host);
  }
}
