import { HOST_ID, VM_ID } from "../../common/search-attributes";
import type { RunGuestScriptInput } from "../../workflows/run-guest-script";
import { DEFAULT_AGENT_START_TIMEOUT_MS } from "../../common/config";
import type { UpgradeAgentInput } from "../../workflows/upgrade-agent";
import type { AgentExecBody, AgentUpgradeBody } from "../agent-schemas";
import { ApiError } from "../problem";
import { hostTimeouts, type ApiContext } from "./context";
import { startOperation, type StartedOperation } from "./start-operation";
import { requireVm } from "./vms";

async function requireRunningVm(ctx: ApiContext, vmId: string) {
  const vm = await requireVm(ctx, vmId);
  if (vm.state !== "RUNNING" || !vm.hostId) throw new ApiError("CONFLICT", `VM ${vmId} is ${vm.state}; the guest agent needs it RUNNING`);
  return { ...vm, hostId: vm.hostId };
}

/** Starts runGuestScript: the script's exit code and output land on the operation's `result`. */
export async function startGuestExec(ctx: ApiContext, vmId: string, body: AgentExecBody, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const vm = await requireRunningVm(ctx, vmId);
  const command = {
    vmId,
    ...(body.script !== undefined ? { script: body.script } : { path: body.path }),
    args: body.args,
    ...(body.stdin !== undefined ? { stdin: body.stdin } : {}),
    timeLimitMs: body.timeoutSeconds * 1000,
    maxOutputBytes: body.maxOutputBytes,
  };
  return startOperation(ctx, {
    type: "agent-exec",
    targetType: "vm",
    targetId: vmId,
    requestedBy: user,
    idempotencyKey,
    requestBody: body,
    workflowType: "runGuestScript",
    workflowArgs: (operationId): [RunGuestScriptInput] => [{ operationId, command, timeouts: hostTimeouts(ctx) }],
    summary: `Run ${body.script !== undefined ? "a script" : body.path} in VM ${vm.name}`,
    searchAttributes: [
      { key: VM_ID, value: vmId },
      { key: HOST_ID, value: vm.hostId },
    ],
  });
}

/** The timeouts an agent upgrade runs with (the restarted agent's deadline comes from the config). */
export function agentUpgradeTimeouts(ctx: ApiContext): UpgradeAgentInput["timeouts"] {
  return { ...hostTimeouts(ctx), agentStartMs: ctx.config.agentStartTimeoutMs ?? DEFAULT_AGENT_START_TIMEOUT_MS };
}

/** Starts upgradeAgent on one VM. */
export async function startAgentUpgrade(ctx: ApiContext, vmId: string, body: AgentUpgradeBody, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const vm = await requireRunningVm(ctx, vmId);
  return startOperation(ctx, {
    type: "upgrade-agent",
    targetType: "vm",
    targetId: vmId,
    requestedBy: user,
    idempotencyKey,
    requestBody: body,
    workflowType: "upgradeAgent",
    workflowArgs: (operationId): [UpgradeAgentInput] => [{ operationId, vmId, version: body.version, allowDowngrade: body.allowDowngrade, timeouts: agentUpgradeTimeouts(ctx) }],
    summary: `Upgrade the guest agent of VM ${vm.name} to ${body.version}`,
    searchAttributes: [
      { key: VM_ID, value: vmId },
      { key: HOST_ID, value: vm.hostId },
    ],
  });
}
