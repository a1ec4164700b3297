import { ApplicationFailure } from "@temporalio/common";

/**
 * Every expected failure in the system carries one of these codes, end to end: activities throw
 * them as ApplicationFailure types, workflows catch by type, the Operation row records them and
 * the API maps them to problem+json. Add a code here before throwing it anywhere.
 */
export const ERROR_CODES = [
  // input and state
  "VALIDATION_FAILED",
  "NOT_FOUND",
  "CONFLICT",
  "OPERATION_IN_PROGRESS",
  "IDEMPOTENCY_KEY_REUSED",
  "UNAUTHORIZED",
  "PAYLOAD_TOO_LARGE",
  /** A request body that is not application/json. */
  "UNSUPPORTED_MEDIA_TYPE",
  // placement and capacity
  "NO_HOST_AVAILABLE",
  "INSUFFICIENT_CAPACITY",
  // host and hypervisor
  "HOST_UNREACHABLE",
  "HYPERVISOR_ERROR",
  "DOMAIN_START_FAILED",
  "DOMAIN_NOT_RUNNING",
  // storage
  "STORAGE_ERROR",
  "POOL_NOT_FOUND",
  "POOL_UNAVAILABLE",
  "VOLUME_NOT_FOUND",
  "VOLUME_IN_USE",
  "INVALID_PATH",
  /** The pool's kind cannot do this at all (e.g. snapshots of a raw iSCSI LUN): never retry. */
  "NOT_SUPPORTED",
  "COMMAND_FAILED",
  "COMMAND_TIMEOUT",
  // images
  "DOWNLOAD_FAILED",
  /** The transfer went below its floor or silent (activities/images/transfer-meter.ts). */
  "DOWNLOAD_STALLED",
  /** The outbound fetch policy refuses the address (common/fetch-policy.ts). */
  "URL_NOT_ALLOWED",
  "CHECKSUM_MISMATCH",
  "CONTENT_TOO_LARGE",
  "CONTENT_TYPE_MISMATCH",
  /** VMs boot from the image: its file backs their disks. */
  "IMAGE_IN_USE",
  // virtual networks (issue 10)
  /** The address is held by another port of the network. */
  "ADDRESS_IN_USE",
  "ADDRESS_EXHAUSTED",
  /** Ports (or routers, rules) still use it: delete those first. */
  "NETWORK_IN_USE",
  "SECURITY_GROUP_IN_USE",
  "ROUTER_IN_USE",
  /** The Northbound database did not answer (retried). */
  "OVN_UNAVAILABLE",
  /** The Northbound database refused a transaction: nothing of it was applied. */
  "OVN_ERROR",
  // guest agent (activities/guest-agent/)
  /** No agent answers on the VM's channel (none installed, not started yet, or the guest is off). */
  "AGENT_NOT_CONNECTED",
  /** The agent did not answer in time; retrying may help. */
  "AGENT_TIMEOUT",
  /** The agent answered with an error (its message is kept: "No such file or directory", ...). */
  "AGENT_COMMAND_FAILED",
  /** A script ran past its time limit and was killed. */
  "GUEST_EXEC_TIMEOUT",
  /** The guest's filesystems stayed frozen for their whole allowed time: thawed, the step between failed. */
  "FREEZE_TIMEOUT",
  /** An agent upgrade to an older version than the one running, without allowDowngrade. */
  "AGENT_DOWNGRADE_REFUSED",
  /** The upgraded agent did not answer in time: the guest restored the previous version. */
  "AGENT_ROLLED_BACK",
  /** A fleet agent upgrade ended with VMs whose upgrade failed (each VM's result says why). */
  "AGENT_UPGRADES_FAILED",
  // lifecycle
  /** Temporal does not answer: nothing was recorded; retry after the Retry-After header. */
  "TEMPORAL_UNAVAILABLE",
  "CANCELLED",
  "WORKFLOW_ABORTED",
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);
}

/** A failure retrying cannot fix (bad input, missing resource, checksum mismatch, ...). */
export function permanentFailure(code: ErrorCode, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type: code, message, nonRetryable: true, details: details === undefined ? [] : [details] });
}

/** A failure that may pass (host busy, daemon restarting): Temporal retries it per the policy. */
export function transientFailure(code: ErrorCode, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type: code, message, nonRetryable: false, details: details === undefined ? [] : [details] });
}
