import { ApplicationFailure } from "@temporalio/common";
import type { ActivityInterceptorsFactory } from "@temporalio/worker";
import { stepTagOf, type StepTag } from "../../common/step-header";

/**
 * Failure injection by saga step, for the sweep tests. Every worker of a test system runs this
 * activity interceptor; it reads the `qx-step` header the workflow put on each activity (no test
 * branch in product code, no activity names written by hand) and, while a fault is armed, makes
 * the activities of one step of one workflow type fail:
 *   before  the step's first activity throws before doing anything (non-retryable)
 *   after   the step's last activity really runs, then throws (non-retryable): the case that
 *           justifies running the failed step's own undo
 *   once    the step's first activity throws once, retryably, before its work; the retry succeeds
 *   undo    the undo of the step throws (non-retryable) every time it is tried
 * Past the point of no return (committed steps) a fault fires at most twice: the saga retries the
 * final record until it succeeds, which is what the test then checks.
 * While observing, every call is recorded: a successful run gives the workflow's step list.
 */
export const INJECTED_FAILURE_CODE = "HYPERVISOR_ERROR";

export type FaultVariant = "before" | "after" | "once" | "undo";

export interface Fault {
  workflowType: string;
  step: string;
  variant: FaultVariant;
  /** The step's last call index (0-based), from an observed run: where "after" fires. */
  lastCall?: number;
  /** Called (not awaited) when the fault fires: e.g. take the host away while the saga unwinds. */
  onFire?: () => void;
}

export interface ObservedCall extends StepTag {
  workflowType: string;
  activityType: string;
  attempt: number;
}

const COMMITTED_FIRINGS = 2;

export class FaultPlan {
  private armed: Fault[] = [];
  private fired = new Map<Fault, number>();
  private observed: ObservedCall[] | null = null;

  /** Arms the faults (replacing any) until `clear()`. */
  arm(...faults: Fault[]): void {
    this.armed = faults;
    this.fired = new Map();
  }

  clear(): void {
    this.armed = [];
  }

  /** How often each armed fault fired since it was armed. */
  firings(fault: Fault): number {
    return this.fired.get(fault) ?? 0;
  }

  /** Records every call with a step header from now until `stopObserving()`. */
  observe(): void {
    this.observed = [];
  }

  stopObserving(): ObservedCall[] {
    const calls = this.observed ?? [];
    this.observed = null;
    return calls;
  }

  readonly interceptor: ActivityInterceptorsFactory = (ctx) => ({
    inbound: {
      execute: async (input, next) => {
        const tag = stepTagOf(input.headers);
        if (!tag) return next(input);
        const { workflowType = "", activityType, attempt } = ctx.info;
        this.observed?.push({ ...tag, workflowType, activityType, attempt });
        const fault = this.armed.find((f) => f.workflowType === workflowType && f.step === tag.step && (f.variant === "undo") === (tag.kind === "UNDO"));
        if (!fault) return next(input);
        const count = this.fired.get(fault) ?? 0;
        if (tag.committed && count >= COMMITTED_FIRINGS) return next(input);
        const fire = () => {
          this.fired.set(fault, count + 1);
          fault.onFire?.();
          return ApplicationFailure.create({
            type: INJECTED_FAILURE_CODE,
            message: `injected failure (${fault.variant}) in ${tag.kind === "UNDO" ? "undo " : ""}${tag.step} (${activityType})`,
            nonRetryable: fault.variant !== "once",
          });
        };
        switch (fault.variant) {
          case "before":
            if (tag.call === 0) throw fire();
            return next(input);
          case "after": {
            const result = await next(input);
            if (tag.call === (fault.lastCall ?? 0)) throw fire();
            return result;
          }
          case "once":
            if (tag.call === 0 && count === 0) throw fire();
            return next(input);
          case "undo":
            throw fire();
        }
      },
    },
  });
}
