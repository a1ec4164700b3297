import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { INJECTED_FAILURE_CODE } from "./faults";

/**
 * Activity wrappers for the tests that need more than a fault by step (faults.ts, sweep.ts):
 *   runningTwice(activities)         — every activity runs twice (idempotency of steps and undos)
 *   delayedWithHeartbeats(...)       — an activity that takes a while, heartbeating (for cancels)
 *   failingAt(activities, name)      — one activity fails, non-retryably: the older, hand-listed
 *                                      style (each-step-fails.ts) the network suites still use;
 *                                      new tests aim at steps with sweep.ts instead
 * Workers are built over activity objects, so a test restarts the real worker over the copy.
 */
type ActivityFn = (...args: any[]) => Promise<unknown>;
type Activities = Record<string, ActivityFn>;

export { INJECTED_FAILURE_CODE };

/** Maps a workflow step (as recorded on the Operation) to the activity that performs it. */
export interface StepActivity<Side extends string = "database" | "host" | "network"> {
  step: string;
  activity: string;
  side: Side;
}

export function failingAt<T extends object>(activities: T, name: string): T {
  if (!(name in activities)) throw new Error(`no activity ${name}`);
  return {
    ...activities,
    [name]: async () => {
      throw ApplicationFailure.create({ type: INJECTED_FAILURE_CODE, message: `injected failure in ${name}`, nonRetryable: true });
    },
  };
}

export function runningTwice<T extends object>(activities: T): T {
  const twice: Activities = {};
  for (const [name, fn] of Object.entries(activities as Activities)) {
    twice[name] = async (...args: unknown[]) => {
      await fn(...args);
      return fn(...args);
    };
  }
  return twice as T;
}

export function delayedWithHeartbeats<T extends object>(activities: T, name: string, delayMs: number): T {
  const real = (activities as Activities)[name];
  if (!real) throw new Error(`no activity ${name}`);
  return {
    ...activities,
    [name]: async (...args: unknown[]) => {
      const ctx = Context.current();
      for (let waited = 0; waited < delayMs; waited += 200) {
        ctx.heartbeat();
        await ctx.sleep(200); // rejects as soon as the workflow's cancel reaches this activity
      }
      return real(...args);
    },
  };
}
