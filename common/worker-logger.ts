import { CancelledFailure, type LogLevel, type LogMetadata, type Logger } from "@temporalio/common";
import { DefaultLogger } from "@temporalio/worker";
import { isErrorCode } from "./errors";

/**
 * The workers' log. Temporal's worker logs every failed activity and workflow with the error's
 * stack; for an expected failure (one typed with our error codes, such as NO_HOST_AVAILABLE or a
 * capacity refusal, or a cancel) that is noise that buries real errors, so it becomes one line
 * with the operation id. Everything else (INTERNAL, untyped errors, timeouts) keeps its stack.
 */
export function workerLogger(component: string): Logger {
  const fallback = new DefaultLogger("INFO");
  const log = (level: LogLevel, message: string, meta?: LogMetadata) => {
    const line = expectedFailureLine(message, meta);
    if (line) console.warn(`${new Date().toISOString()} [${component}] ${line}`);
    else fallback.log(level, message, meta);
  };
  return {
    log,
    trace: (message, meta) => log("TRACE", message, meta),
    debug: (message, meta) => log("DEBUG", message, meta),
    info: (message, meta) => log("INFO", message, meta),
    warn: (message, meta) => log("WARN", message, meta),
    error: (message, meta) => log("ERROR", message, meta),
  };
}

// The expected failure each workflow's activity last reported: the worker's "Workflow failed" entry
// carries the error without its type, so it is recognised by its message.
const lastExpected = new Map<string, string>();

function expectedFailureLine(message: string, meta?: LogMetadata): string | null {
  if (!meta || !/failed|cancel/i.test(message)) return null;
  const workflowId = String(meta.workflowId ?? "");
  let failure = expectedFailure(meta.error);
  if (failure && meta.activityType) {
    if (lastExpected.size > 1_000) lastExpected.clear();
    lastExpected.set(workflowId, failure);
  }
  if (!failure && !meta.activityType) {
    const known = lastExpected.get(workflowId);
    lastExpected.delete(workflowId);
    if (known?.endsWith(`: ${String((meta.error as { message?: unknown } | undefined)?.message)}`)) failure = known;
  }
  if (!failure) return null;
  // Operation workflow ids end with the operation id (common/operations.ts: type:target:operation).
  const operation = workflowId.split(":").length === 3 ? `operation ${workflowId.split(":")[2]}` : `workflow ${workflowId}`;
  const where = meta.activityType ? ` in ${String(meta.activityType)}` : "";
  return `${operation} (${String(meta.workflowType ?? "")})${where}: ${message.toLowerCase()}: ${failure}`;
}

/** By shape, not instanceof: a workflow's errors come from its sandbox, where the classes are other objects. */
function expectedFailure(err: unknown): string | null {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const { name, type, message } = e as { name?: unknown; type?: unknown; message?: unknown };
    if (name === CancelledFailure.name) return "CANCELLED";
    if (isErrorCode(type)) return type === "INTERNAL" ? null : `${type}: ${String(message)}`;
  }
  return null;
}
