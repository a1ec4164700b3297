import { randomUUID } from "node:crypto";
import type { AgentUpgradeTarget, Prisma } from "@prisma/client";
import type { UpgradeAgentsInput } from "../../workflows/upgrade-agents";
import type { FleetUpgradeBody } from "../agent-schemas";
import { presentOperation } from "../presenters";
import { ApiError } from "../problem";
import type { ApiContext } from "./context";
import { agentUpgradeTimeouts } from "./guest-agent";
import { startOperation, type StartedOperation } from "./start-operation";

/**
 * Fleet agent upgrades: the selector is resolved now, over RUNNING VMs, and the set (in name
 * order) is recorded with the run; the upgradeAgents workflow works through it.
 */
export async function startFleetUpgrade(ctx: ApiContext, body: FleetUpgradeBody, user: string, idempotencyKey?: string): Promise<StartedOperation & { runId: string }> {
  const runId = randomUUID();
  const { selector } = body;
  const where: Prisma.VmWhereInput = {
    state: "RUNNING",
    ...(selector.vmIds ? { id: { in: selector.vmIds } } : {}),
    ...(selector.hostId ? { hostId: selector.hostId } : {}),
    ...(selector.namePrefix ? { name: { startsWith: selector.namePrefix } } : {}),
  };
  const started = await startOperation(ctx, {
    type: "upgrade-agents",
    targetType: "agent-upgrade",
    targetId: runId,
    requestedBy: user,
    idempotencyKey,
    requestBody: body,
    workflowType: "upgradeAgents",
    workflowArgs: (operationId): [UpgradeAgentsInput] => [
      { operationId, runId, version: body.version, allowDowngrade: body.allowDowngrade, maxParallel: body.maxParallel, maxFailures: body.maxFailures, requestedBy: user, timeouts: agentUpgradeTimeouts(ctx) },
    ],
    summary: `Upgrade guest agents to ${body.version} (${JSON.stringify(selector)})`,
    searchAttributes: [],
    inTransaction: async (tx) => {
      const vms = await tx.vm.findMany({ where, orderBy: [{ name: "asc" }, { id: "asc" }], select: { id: true, name: true } });
      if (vms.length === 0) throw new ApiError("VALIDATION_FAILED", "the selector matches no RUNNING VM");
      await tx.agentUpgradeRun.create({
        data: {
          id: runId,
          version: body.version,
          selector: selector as Prisma.InputJsonValue,
          maxParallel: body.maxParallel,
          maxFailures: body.maxFailures,
          allowDowngrade: body.allowDowngrade,
          targets: { create: vms.map((vm, position) => ({ vmId: vm.id, vmName: vm.name, position })) },
        },
      });
    },
  });
  return { ...started, runId: started.operation.targetId };
}

function counts(targets: AgentUpgradeTarget[]) {
  const of = (outcome: AgentUpgradeTarget["outcome"]) => targets.filter((t) => t.outcome === outcome).length;
  return { total: targets.length, done: of("DONE"), failed: of("FAILED"), running: of("RUNNING"), pending: of("PENDING"), skipped: of("SKIPPED"), notStarted: of("NOT_STARTED") };
}

export async function getFleetUpgrade(ctx: ApiContext, runId: string) {
  const run = await ctx.prisma.agentUpgradeRun.findUnique({ where: { id: runId }, include: { targets: { orderBy: { position: "asc" } } } });
  if (!run) throw new ApiError("NOT_FOUND", `agent upgrade ${runId} does not exist`);
  const operation = await ctx.prisma.operation.findFirst({ where: { targetType: "agent-upgrade", targetId: run.id } });
  return {
    id: run.id,
    version: run.version,
    selector: run.selector,
    maxParallel: run.maxParallel,
    maxFailures: run.maxFailures,
    allowDowngrade: run.allowDowngrade,
    state: operation?.state ?? "PENDING",
    error: operation?.errorCode ? { code: operation.errorCode, message: operation.errorMessage } : null,
    progress: counts(run.targets),
    vms: run.targets.map((t) => ({
      vmId: t.vmId,
      name: t.vmName,
      outcome: t.outcome.toLowerCase().replace("_", "-"),
      operationId: t.operationId,
      from: t.fromVersion,
      to: t.toVersion,
      error: t.errorCode ? { code: t.errorCode, message: t.errorMessage } : null,
      startedAt: t.startedAt,
      finishedAt: t.finishedAt,
    })),
    operation: operation ? presentOperation(ctx.config, operation) : null,
    createdAt: run.createdAt,
    links: { self: `/v1/agent-upgrades/${run.id}`, operations: `/v1/operations?targetId=${run.id}` },
  };
}
