import { ActivityFailure, ApplicationFailure, TimeoutFailure, isCancellation } from "@temporalio/workflow";
import { TimeoutType } from "@temporalio/common";
import { isErrorCode, type ErrorCode } from "../common/errors";

export interface FailureSummary {
  code: ErrorCode;
  message: string;
}

/** The error code and message an operation records for a failure, whatever layer raised it. */
export function summariseFailure(err: unknown): FailureSummary {
  if (isCancellation(err)) return { code: "CANCELLED", message: "cancelled by request" };
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof TimeoutFailure) {
    return cause.timeoutType === TimeoutType.SCHEDULE_TO_START
      ? { code: "HOST_UNREACHABLE", message: `no worker of the target host picked up ${activityName(err)} in time` }
      : { code: "COMMAND_TIMEOUT", message: `${activityName(err)} timed out (${cause.timeoutType ?? "unknown timeout"})` };
  }
  if (cause instanceof ApplicationFailure) {
    return { code: isErrorCode(cause.type) ? cause.type : "INTERNAL", message: cause.message };
  }
  return { code: "INTERNAL", message: err instanceof Error ? err.message : String(err) };
}

/** What a cancelled operation records, also when the interrupted step ended otherwise (its worker died, it timed out). */
export function cancelledOutcome(err: unknown): FailureSummary {
  if (isCancellation(err)) return summariseFailure(err);
  return { code: "CANCELLED", message: `cancelled by request (the interrupted step ended: ${summariseFailure(err).message})` };
}

/** True when the step never began on its worker, so it left nothing to undo. */
export function neverStarted(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

function activityName(err: unknown): string {
  return err instanceof ActivityFailure ? err.activityType : "the step";
}
