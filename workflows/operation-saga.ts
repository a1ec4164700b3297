import { ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, log, proxyLocalActivities, sleep } from "@temporalio/workflow";
import type { DatabaseActivities } from "../activities/database";
import type { StepRef, StepTransition } from "../activities/database/operations";
import type { FailedCleanupStep, Leftover } from "../common/cleanup";
import { DEFAULT_UNDO_DEADLINE_MS } from "../common/undo-deadline";
import { cancelledOutcome, neverStarted, summariseFailure, type FailureSummary } from "./failures";
import { runTagged } from "./step-context";

// Writes to the operation record are local activities: they run in the control-plane worker next
// to the workflow, without a round trip through the server's task queues for each step.
const record = proxyLocalActivities<DatabaseActivities>({
  startToCloseTimeout: "15s",
  retry: { initialInterval: "200ms", maximumInterval: "5s", maximumAttempts: 20 },
});

// Past the point of no return, and for an undo whose host is away, the saga retries at workflow
// level with this backoff: a schedule-to-start timeout is never retried by Temporal itself.
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;
// Recording a failed operation's outcome is retried this often before the operation is closed
// saying so (a record that can never be written must not keep the operation open for ever).
const OUTCOME_ATTEMPTS = 8;

/** An undo that did not succeed before its deadline: what it would have removed is still there. */
export type UndoFailure = FailedCleanupStep & { kind: "UNDO" };

/** The failure that ended the forward path, with the step it happened in (if any). */
export interface StepFailureSummary extends FailureSummary {
  step?: string;
}

interface Undo {
  step: string;
  run: (failedSoFar: readonly UndoFailure[]) => Promise<unknown>;
  leftover?: Leftover;
}

export interface SagaOptions {
  /** How long undos wait for a host that is away (QX_UNDO_DEADLINE_MS), from compensation's start. */
  undoDeadlineMs?: number;
}

/**
 * A saga that keeps the Operation row current: each step is recorded with its start and end,
 * each completed step's undo is registered, and on failure or cancellation the undos run in
 * reverse inside a non-cancellable scope (a cancel still cleans up).
 *
 * - Undos must be idempotent and accept "already gone". The failed step's own undo runs too: a step
 *   that failed part-way (or after its work) may have left something; only a step that never
 *   reached its worker (schedule-to-start timeout) is skipped.
 * - An undo that fails is retried with backoff until the undo deadline (a host that is down gets
 *   the time to come back), then recorded on the operation with the leftover it names; the
 *   workflow's failure record keeps the trail (common/cleanup.ts). Never swallowed.
 * - `commit()` is the point of no return: from there no undo runs, whatever happens, and the final
 *   record writes are retried until they succeed. A workflow calls it right after the step that
 *   makes the result real.
 * - Every step and undo runs in a scope tagged with its name, so each activity it schedules carries
 *   the `qx-step` header (step-header-interceptor.ts).
 */
export class OperationSaga {
  private readonly undos: Undo[] = [];
  private completed = 0;
  private committed = false;
  private failedStep: string | undefined;
  private readonly undoDeadlineMs: number;
  /** The last completed step, recorded together with the next transition (one write, not two). */
  private unrecordedCompletion: StepRef | undefined;

  constructor(
    private readonly operationId: string,
    private readonly totalSteps: number,
    options: SagaOptions = {},
  ) {
    this.undoDeadlineMs = options.undoDeadlineMs ?? DEFAULT_UNDO_DEADLINE_MS;
  }

  private progress(): number {
    return Math.min(99, Math.floor((this.completed / this.totalSteps) * 100));
  }

  /** The write recording that `started` begins (and the previous step ended); safe to retry. */
  private transition(started: StepRef): StepTransition {
    const completed = this.unrecordedCompletion;
    this.unrecordedCompletion = undefined;
    return { operationId: this.operationId, completed, started, progress: this.progress() };
  }

  /**
   * Runs one step; `undo` (if any) reverses it, and `leftover` names what the step makes, for the
   * trail if its undo fails. The step's start is written while its action already runs: the record
   * never delays the work, and it is on disk before the step returns.
   */
  async step<T>(name: string, action: () => Promise<T>, undo?: Undo["run"], leftover?: Leftover): Promise<T> {
    if (this.committed) throw ApplicationFailure.create({ type: "INTERNAL", nonRetryable: true, message: `step ${name} after the point of no return` });
    const recorded = record.stepTransition(this.transition({ step: name, kind: "STEP" }));
    const registered = undo ? { step: name, run: undo, ...(leftover ? { leftover } : {}) } : undefined;
    let result: T;
    try {
      result = await runTagged({ step: name, kind: "STEP", committed: false }, true, action);
    } catch (err) {
      if (registered && !neverStarted(err)) this.undos.push(registered);
      this.failedStep = name;
      const failure = summariseFailure(err);
      await CancellationScope.nonCancellable(async () => {
        await recorded;
        await record.stepFailed({ operationId: this.operationId, step: name, kind: "STEP", errorCode: failure.code, errorMessage: failure.message });
      });
      throw err;
    }
    // Registered before anything else can fail or be cancelled: the step's effect exists now.
    if (registered) this.undos.push(registered);
    await CancellationScope.nonCancellable(() => recorded);
    this.completed += 1;
    this.unrecordedCompletion = { step: name, kind: "STEP" };
    return result;
  }

  /**
   * The point of no return: the result is real, so no undo will run from here on (a cancel or a
   * failure cannot destroy it). `finalStep`, the write that records the result, is then retried
   * until it succeeds (it must be idempotent), and the operation is closed COMPLETED the same way.
   */
  async commit(finalStep?: string, write?: () => Promise<unknown>): Promise<void> {
    this.committed = true;
    this.undos.length = 0;
    await CancellationScope.nonCancellable(async () => {
      if (finalStep && write) {
        const started = this.transition({ step: finalStep, kind: "STEP" });
        await retriedUntilDone("recording the step's start", () => record.stepTransition(started));
        await runTagged({ step: finalStep, kind: "STEP", committed: true }, false, () => retriedUntilDone(finalStep, write));
        this.completed += 1;
        this.unrecordedCompletion = { step: finalStep, kind: "STEP" };
      }
      const completed = this.unrecordedCompletion;
      await retriedUntilDone("closing the operation", () => record.operationFinished({ operationId: this.operationId, state: "COMPLETED", completed }));
    });
  }

  /**
   * Undoes every completed step, lets `onFailed` record the resource's final state (given the
   * undos that failed: their leftovers must stay referenced), closes the operation as FAILED or
   * CANCELLED, and rethrows so the workflow run ends failed/cancelled too.
   */
  async fail(err: unknown, onFailed: (failure: StepFailureSummary, undoFailures: UndoFailure[]) => Promise<void>): Promise<never> {
    if (this.committed) throw err;
    // A requested cancel decides the outcome, whatever error the interrupted step ended with: a
    // step whose host worker died while the cancel waited for it ends with a timeout, not a
    // cancellation, and the user who cancelled must still see CANCELLED.
    const cancelled = isCancellation(err) || CancellationScope.current().consideredCancelled;
    const failure: StepFailureSummary = { ...(cancelled ? cancelledOutcome(err) : summariseFailure(err)), ...(this.failedStep ? { step: this.failedStep } : {}) };
    await CancellationScope.nonCancellable(async () => {
      const undoFailures = await this.compensate();
      // The operation is closed even if recording the resource's state keeps failing: an operation
      // must never stay RUNNING after its workflow ended. What failed is said in its message.
      const recordFailure = await retried(OUTCOME_ATTEMPTS, () => onFailed(failure, undoFailures)).then(
        () => "",
        (recordErr: unknown) => ` (recording the outcome failed: ${summariseFailure(recordErr).message})`,
      );
      const cleanup =
        (undoFailures.length ? ` (undo failed: ${undoFailures.map((u) => `${u.step}: ${u.message}`).join("; ")})` : "") + recordFailure;
      const outcome = {
        operationId: this.operationId,
        state: cancelled ? ("CANCELLED" as const) : ("FAILED" as const),
        completed: this.unrecordedCompletion,
        errorCode: failure.code,
        errorMessage: failure.message + cleanup,
      };
      await retriedUntilDone("closing the operation", () => record.operationFinished(outcome));
    });
    throw err;
  }

  private async compensate(): Promise<UndoFailure[]> {
    const failures: UndoFailure[] = [];
    const deadline = Date.now() + this.undoDeadlineMs;
    for (const undo of [...this.undos].reverse()) {
      const started = this.transition({ step: undo.step, kind: "UNDO" });
      await retriedUntilDone("recording the undo's start", () => record.stepTransition(started));
      try {
        await runTagged({ step: undo.step, kind: "UNDO", committed: false }, false, () => untilDeadline(deadline, () => undo.run(failures)));
        this.unrecordedCompletion = { step: undo.step, kind: "UNDO" };
      } catch (undoErr) {
        const { code, message } = summariseFailure(undoErr);
        failures.push({ operationId: this.operationId, step: undo.step, kind: "UNDO", code, message, ...(undo.leftover ? { leftover: undo.leftover } : {}) });
        await record.stepFailed({ operationId: this.operationId, step: undo.step, kind: "UNDO", errorCode: code, errorMessage: message });
      }
    }
    return failures;
  }
}

/** A failure Temporal gave up on that a later try may not meet: anything but a non-retryable one. */
function worthRetrying(err: unknown): boolean {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return !(cause instanceof ApplicationFailure && cause.nonRetryable);
}

/** Retries `run` with backoff while its failure is worth retrying and the deadline is ahead. */
async function untilDeadline<T>(deadline: number, run: () => Promise<T>): Promise<T> {
  for (let backoff = FIRST_BACKOFF_MS; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    try {
      return await run();
    } catch (err) {
      const remaining = deadline - Date.now();
      if (!worthRetrying(err) || remaining <= 0) throw err;
      await sleep(Math.min(backoff, remaining));
    }
  }
}

/** Past the point of no return there is no way back: only forward, however long it takes. */
async function retriedUntilDone<T>(what: string, run: () => Promise<T>): Promise<T> {
  for (let backoff = FIRST_BACKOFF_MS; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    try {
      return await run();
    } catch (err) {
      log.warn(`${what} failed; retrying in ${backoff} ms`, { error: summariseFailure(err).message });
      await sleep(backoff);
    }
  }
}

async function retried<T>(attempts: number, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1, backoff = FIRST_BACKOFF_MS; ; attempt++, backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    try {
      return await run();
    } catch (err) {
      if (attempt >= attempts) throw err;
      await sleep(backoff);
    }
  }
}
