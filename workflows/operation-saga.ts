import { CancellationScope, isCancellation, proxyLocalActivities } from "@temporalio/workflow";
import type { DatabaseActivities } from "../activities/database";
import type { StepRef } from "../activities/database/operations";
import { cancelledOutcome, neverStarted, summariseFailure, type FailureSummary } from "./failures";

// Writes to the operation record are local activities: they run in the control-plane worker next
// to the workflow, without a round trip through the server's task queues for each step.
const record = proxyLocalActivities<DatabaseActivities>({
  startToCloseTimeout: "15s",
  retry: { initialInterval: "200ms", maximumInterval: "5s", maximumAttempts: 20 },
});

interface Undo {
  step: string;
  run: () => Promise<unknown>;
}

export interface UndoFailure {
  step: string;
  code: string;
  message: string;
}

/**
 * A saga that keeps the Operation row current: each step is recorded with its start and end,
 * each completed step's undo is registered, and on failure or cancellation the undos run in
 * reverse inside a non-cancellable scope (a cancel still cleans up). Undos must be idempotent and
 * accept "already gone": the failed step's own undo runs too, because a step that failed part-way
 * (crash, timeout) may have left something behind; only a step that never reached its worker
 * (schedule-to-start timeout) is skipped. A failed undo is recorded on the operation, never
 * swallowed.
 */
export class OperationSaga {
  private readonly undos: Undo[] = [];
  private completed = 0;
  /** The last completed step, recorded together with the next transition (one write, not two). */
  private unrecordedCompletion: StepRef | undefined;

  constructor(
    private readonly operationId: string,
    private readonly totalSteps: number,
  ) {}

  private progress(): number {
    return Math.min(99, Math.floor((this.completed / this.totalSteps) * 100));
  }

  private transition(started: StepRef): Promise<void> {
    const completed = this.unrecordedCompletion;
    this.unrecordedCompletion = undefined;
    return record.stepTransition({ operationId: this.operationId, completed, started, progress: this.progress() });
  }

  /**
   * Runs one step; `undo` (if any) reverses it. The step's start is written while its action
   * already runs: the record never delays the work, and it is on disk before the step returns.
   */
  async step<T>(name: string, action: () => Promise<T>, undo?: () => Promise<unknown>): Promise<T> {
    const recorded = this.transition({ step: name, kind: "STEP" });
    let result: T;
    try {
      result = await action();
    } catch (err) {
      if (undo && !neverStarted(err)) this.undos.push({ step: name, run: undo });
      const failure = summariseFailure(err);
      await CancellationScope.nonCancellable(async () => {
        await recorded;
        await record.stepFailed({ operationId: this.operationId, step: name, kind: "STEP", errorCode: failure.code, errorMessage: failure.message });
      });
      throw err;
    }
    // Registered before anything else can fail or be cancelled: the step's effect exists now.
    if (undo) this.undos.push({ step: name, run: undo });
    await CancellationScope.nonCancellable(() => recorded);
    this.completed += 1;
    this.unrecordedCompletion = { step: name, kind: "STEP" };
    return result;
  }

  async succeed(): Promise<void> {
    await record.operationFinished({ operationId: this.operationId, state: "COMPLETED", completed: this.unrecordedCompletion });
  }

  /**
   * Undoes every completed step, lets `onFailed` record the resource's final state, closes the
   * operation as FAILED or CANCELLED, and rethrows so the workflow run ends failed/cancelled too.
   */
  async fail(err: unknown, onFailed: (failure: FailureSummary, undoFailures: UndoFailure[]) => Promise<void>): Promise<never> {
    // A requested cancel decides the outcome, whatever error the interrupted step ended with: a
    // step whose host worker died while the cancel waited for it ends with a timeout, not a
    // cancellation, and the user who cancelled must still see CANCELLED.
    const cancelled = isCancellation(err) || CancellationScope.current().consideredCancelled;
    const failure = cancelled ? cancelledOutcome(err) : summariseFailure(err);
    await CancellationScope.nonCancellable(async () => {
      const undoFailures = await this.compensate();
      // The operation is closed even if recording the resource's state fails: an operation must
      // never stay RUNNING after its workflow ended. What failed is said in its message.
      const recordFailure = await onFailed(failure, undoFailures).then(
        () => "",
        (recordErr: unknown) => ` (recording the outcome failed: ${summariseFailure(recordErr).message})`,
      );
      const cleanup =
        (undoFailures.length ? ` (undo failed: ${undoFailures.map((u) => `${u.step}: ${u.message}`).join("; ")})` : "") + recordFailure;
      await record.operationFinished({
        operationId: this.operationId,
        state: cancelled ? "CANCELLED" : "FAILED",
        completed: this.unrecordedCompletion,
        errorCode: failure.code,
        errorMessage: failure.message + cleanup,
      });
    });
    throw err;
  }

  private async compensate(): Promise<UndoFailure[]> {
    const failures: UndoFailure[] = [];
    for (const undo of [...this.undos].reverse()) {
      await this.transition({ step: undo.step, kind: "UNDO" });
      try {
        await undo.run();
        this.unrecordedCompletion = { step: undo.step, kind: "UNDO" };
      } catch (undoErr) {
        const { code, message } = summariseFailure(undoErr);
        failures.push({ step: undo.step, code, message });
        await record.stepFailed({ operationId: this.operationId, step: undo.step, kind: "UNDO", errorCode: code, errorMessage: message });
      }
    }
    return failures;
  }
}
