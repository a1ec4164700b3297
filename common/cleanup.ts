/**
 * Undo trails. When an undo or a delete step fails, what it should have removed still exists: the
 * resource keeps every reference to it and goes to ERROR with a PendingCleanup, shown by the API as
 * `cleanup`. A repeated DELETE (or the host sweep) removes the leftovers and clears it. Clearing a
 * reference to something that still exists is how orphans are made, so nothing here is ever
 * dropped because a host was down. Shared by workflows (no Node imports) and activities.
 */

/** One thing left on a host or a pool, by reference: enough to find it and remove it. */
export type Leftover =
  | { kind: "domain"; hostId: string; vmId: string }
  | { kind: "volume"; hostId: string | null; poolId: string; volumeId: string; lun?: number }
  | { kind: "seed-iso"; hostId: string; poolId: string; vmId: string }
  | { kind: "image-files"; hostId: string; poolId: string; imageId: string }
  | { kind: "pool-setup"; hostId: string; poolId: string };

/** A step or undo that did not finish, as the operation recorded it. */
export interface FailedCleanupStep {
  operationId: string;
  step: string;
  kind: "STEP" | "UNDO";
  code: string;
  message: string;
  /** What the step would have removed (undos of steps that make something name it). */
  leftover?: Leftover;
}

export interface PendingCleanup {
  operationId: string;
  failed: FailedCleanupStep[];
  /** What is left. A repeated DELETE removes each (every removal is idempotent). */
  remains: Leftover[];
}

/** The forward step that failed (a delete's), as a cleanup records it. */
export function failedForwardStep(operationId: string, failure: { step?: string; code: string; message: string }): FailedCleanupStep {
  return { operationId, step: failure.step ?? "(before any step)", kind: "STEP", code: failure.code, message: failure.message };
}

/** A resource's cleanup: what the failed undos of an operation left (none: nothing pending). */
export function cleanupAfterUndos(operationId: string, failed: FailedCleanupStep[]): PendingCleanup | null {
  if (failed.length === 0) return null;
  return { operationId, failed, remains: failed.flatMap((f) => (f.leftover ? [f.leftover] : [])) };
}
