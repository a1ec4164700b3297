/**
 * The operations a user can start. Each one is a workflow run with an Operation row; the type
 * names the workflow in the API, the Operation row, the workflow id and the search attributes.
 */
export const VM_POWER_ACTIONS = ["start", "stop", "force-stop", "reboot"] as const;
export type VmPowerAction = (typeof VM_POWER_ACTIONS)[number];

export type VolumeOperationType =
  | "create-volume"
  | "delete-volume"
  | "resize-volume"
  | "clone-volume"
  | "attach-volume"
  | "detach-volume"
  | "create-snapshot"
  | "delete-snapshot"
  | "revert-snapshot";

export type PoolOperationType = "create-pool" | "assign-pool" | "unassign-pool" | "delete-pool";

export type ImageOperationType = "download-image" | "delete-image";

export type NetworkOperationType =
  | "create-network"
  | "delete-network"
  | "create-port"
  | "delete-port"
  | "update-port"
  | "attach-nic"
  | "detach-nic"
  | "create-security-group"
  | "delete-security-group"
  | "update-security-group-rules"
  | "create-router"
  | "delete-router"
  | "update-router"
  | "create-floating-ip"
  | "update-floating-ip"
  | "delete-floating-ip";

export type OperationType =
  | "create-vm"
  | "delete-vm"
  | `${VmPowerAction}-vm`
  | VolumeOperationType
  | PoolOperationType
  | ImageOperationType
  | NetworkOperationType
  | AgentOperationType;

/** Operations through a VM's guest agent (issue 11); a fleet upgrade's target is its own run id. */
export type AgentOperationType = "agent-exec" | "upgrade-agent" | "upgrade-agents";

/** Operations that make their target: an Idempotency-Key replay is recognised by its body alone. */
export const CREATING_OPERATIONS: readonly OperationType[] = [
  "create-vm",
  "create-volume",
  "clone-volume",
  "create-pool",
  "download-image",
  "create-network",
  "create-port",
  "create-security-group",
  "create-router",
  "create-floating-ip",
];

export type OperationTargetType = "vm" | "volume" | "pool" | "image" | "network" | "port" | "security-group" | "router" | "floating-ip" | "agent-upgrade";

/** Terminal states: an operation in one of these never changes again. */
export const FINAL_OPERATION_STATES = ["COMPLETED", "FAILED", "CANCELLED"] as const;

/**
 * One builder for every operation's workflow id: it says what the workflow does and to what,
 * e.g. `create-vm:6f1c...:a93e...`, so the Temporal UI list reads like an activity log.
 */
export function operationWorkflowId(type: OperationType, targetId: string, operationId: string): string {
  return `${type}:${targetId}:${operationId}`;
}

/** The host announcement is keyed by host alone: one live announcement per host. */
export function announceHostWorkflowId(hostId: string): string {
  return `announce-host:${hostId}`;
}

/** One pool-health monitor per host: every report of that host is a signal to it. */
export function monitorHostWorkflowId(hostId: string): string {
  return `monitor-host:${hostId}`;
}

/** A file listing is read-only and may run many at once: each gets its own id. */
export function listPoolFilesWorkflowId(poolId: string, requestId: string): string {
  return `list-pool-files:${poolId}:${requestId}`;
}

/** One recorder of guest agent statuses per host: each report of that host is a signal to it. */
export function recordGuestAgentsWorkflowId(hostId: string): string {
  return `record-guest-agents:${hostId}`;
}

/** A guest file request is answered while the user waits; many may run at once. */
export function guestFilesWorkflowId(vmId: string, requestId: string): string {
  return `guest-files:${vmId}:${requestId}`;
}
