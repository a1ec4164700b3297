import { randomUUID } from "node:crypto";
import type { ErrorRequestHandler, RequestHandler } from "express";
import type { ErrorCode } from "../common/errors";
import { isTemporalUnavailable, summariseTemporalError } from "./temporal-probe";
import { withoutHostPaths } from "./public-message";

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  INVALID_PATH: 400,
  URL_NOT_ALLOWED: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  CONFLICT: 409,
  OPERATION_IN_PROGRESS: 409,
  IMAGE_IN_USE: 409,
  IDEMPOTENCY_KEY_REUSED: 422,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HOST_UNREACHABLE: 503,
  TEMPORAL_UNAVAILABLE: 503,
  VOLUME_IN_USE: 409,
  VOLUME_NOT_FOUND: 404,
  POOL_NOT_FOUND: 404,
  POOL_UNAVAILABLE: 503,
  NOT_SUPPORTED: 422,
  ADDRESS_IN_USE: 409,
  ADDRESS_EXHAUSTED: 409,
  NETWORK_IN_USE: 409,
  SECURITY_GROUP_IN_USE: 409,
  ROUTER_IN_USE: 409,
  OVN_UNAVAILABLE: 503,
  // No free LUN (or other unit) large enough: the pool must grow first.
  INSUFFICIENT_CAPACITY: 409,
  // The guest agent (issue 11): a VM without an answering agent cannot do this now.
  AGENT_NOT_CONNECTED: 409,
  AGENT_TIMEOUT: 504,
  AGENT_COMMAND_FAILED: 502,
  CONTENT_TOO_LARGE: 413,
};

/** An error the API answers with as RFC 9457 problem+json; `code` is stable, for programs. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly status: number = STATUS_BY_CODE[code] ?? 500,
  ) {
    super(message);
  }
}

const TITLES: Partial<Record<ErrorCode, string>> = {
  VALIDATION_FAILED: "The request is not valid",
  UNAUTHORIZED: "Authentication required",
  NOT_FOUND: "No such resource",
  CONFLICT: "The resource is not in a state that allows this",
  OPERATION_IN_PROGRESS: "Another operation is running on this resource",
  IDEMPOTENCY_KEY_REUSED: "This Idempotency-Key was used for a different request",
  PAYLOAD_TOO_LARGE: "The request body is too large",
  UNSUPPORTED_MEDIA_TYPE: "Request bodies must be application/json",
  INVALID_PATH: "The path leaves the pool or is not allowed",
  URL_NOT_ALLOWED: "Downloads may not reach this address",
  VOLUME_IN_USE: "The volume is in use",
  POOL_UNAVAILABLE: "No host can reach the pool now",
  ADDRESS_IN_USE: "The address is in use",
  NETWORK_IN_USE: "The network still has ports",
  SECURITY_GROUP_IN_USE: "The security group is still in use",
  ROUTER_IN_USE: "The router still has interfaces or floating IPs",
  TEMPORAL_UNAVAILABLE: "The workflow service is unavailable; nothing was done",
  INTERNAL: "Internal error",
};

// How long a client should wait before retrying a request refused because Temporal is down.
const TEMPORAL_RETRY_AFTER_SECONDS = 5;

function send(res: Parameters<ErrorRequestHandler>[2], status: number, code: ErrorCode, detail: string, instance: string, extra: Record<string, unknown> = {}) {
  if (code === "TEMPORAL_UNAVAILABLE") res.set("Retry-After", String(TEMPORAL_RETRY_AFTER_SECONDS));
  res
    .status(status)
    .type("application/problem+json")
    .json({ type: `https://quantix.dev/problems/${code.toLowerCase().replace(/_/g, "-")}`, title: TITLES[code] ?? code, status, detail: withoutHostPaths(detail), code, instance, ...extra });
}

export const notFoundHandler: RequestHandler = (req, res) => {
  send(res, 404, "NOT_FOUND", `no route ${req.method} ${req.path}`, req.originalUrl);
};

/** Turns every error into problem+json; internal errors are logged and hidden behind a log id. */
export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  if (err instanceof ApiError) return send(res, err.status, err.code, err.message, req.originalUrl, err.extra);
  // body-parser's errors: oversize and malformed JSON bodies.
  const parserError = err as { type?: string; status?: number; message?: string };
  if (parserError.type === "entity.too.large") return send(res, 413, "PAYLOAD_TOO_LARGE", parserError.message ?? "body too large", req.originalUrl);
  if (parserError.type === "entity.parse.failed" || parserError.type === "encoding.unsupported" || parserError.status === 400) {
    return send(res, 400, "VALIDATION_FAILED", `malformed request body: ${parserError.message ?? "unreadable"}`, req.originalUrl);
  }
  // Any call that needed Temporal (a cancel, a listing) while it does not answer: 503, not 500.
  if (isTemporalUnavailable(err)) {
    console.warn(`[api] ${req.method} ${req.originalUrl}: Temporal unavailable (${summariseTemporalError(err)})`);
    return send(res, 503, "TEMPORAL_UNAVAILABLE", "the workflow service (Temporal) is unavailable", req.originalUrl);
  }
  const logId = randomUUID();
  console.error(`[api] internal error ${logId} on ${req.method} ${req.originalUrl}:`, err);
  return send(res, 500, "INTERNAL", `internal error; log id ${logId}`, req.originalUrl, { logId });
};
