import { Prisma, type PrismaClient } from "@prisma/client";

/** One VM of a fleet upgrade, as the fleet workflow works through them. */
export interface AgentUpgradeTargetRef {
  runId: string;
  vmId: string;
  vmName: string;
}

export type TargetStart = { started: true } | { started: false; outcome: "skipped" | "failed" };

/**
 * The rows of fleet agent upgrades (workflows/upgrade-agents.ts): each VM's outcome, and its own
 * upgrade-agent operation, whose row takes the VM's one-operation lock like any other.
 */
export function createAgentUpgradeRecordActivities(prisma: PrismaClient) {
  return {
    async loadAgentUpgradeTargets(runId: string): Promise<AgentUpgradeTargetRef[]> {
      const targets = await prisma.agentUpgradeTarget.findMany({ where: { runId }, orderBy: { position: "asc" } });
      return targets.map((t) => ({ runId, vmId: t.vmId, vmName: t.vmName }));
    },

    /**
     * A VM's turn: skipped when its agent is not connected (as its host last reported), failed when
     * another operation holds the VM; otherwise its upgrade-agent operation row is written (the
     * lock) and the target marked RUNNING. Idempotent: a retry finds its own row.
     */
    async beginAgentUpgradeTarget(input: AgentUpgradeTargetRef & { operationId: string; workflowId: string; requestedBy: string; request: unknown }): Promise<TargetStart> {
      const target = await prisma.agentUpgradeTarget.findUniqueOrThrow({ where: { runId_vmId: { runId: input.runId, vmId: input.vmId } } });
      if (target.outcome === "RUNNING" && target.operationId === input.operationId) return { started: true };
      const now = new Date();
      const agent = await prisma.vmGuestAgent.findUnique({ where: { vmId: input.vmId } });
      const vm = await prisma.vm.findUnique({ where: { id: input.vmId } });
      if (!vm || vm.state !== "RUNNING" || !agent?.connected) {
        const why = !vm ? "the VM no longer exists" : vm.state !== "RUNNING" ? `the VM is ${vm.state}` : "its guest agent is not connected";
        await prisma.agentUpgradeTarget.update({
          where: { runId_vmId: { runId: input.runId, vmId: input.vmId } },
          data: { outcome: "SKIPPED", errorCode: "AGENT_NOT_CONNECTED", errorMessage: why, finishedAt: now },
        });
        return { started: false, outcome: "skipped" };
      }
      try {
        await prisma.$transaction([
          prisma.operation.create({
            data: {
              id: input.operationId,
              type: "upgrade-agent",
              targetType: "vm",
              targetId: input.vmId,
              requestedBy: input.requestedBy,
              workflowId: input.workflowId,
              input: input.request as Prisma.InputJsonValue,
              // Started by its parent right after this (a child workflow): not the outbox sweeper's to start.
              workflowStartedAt: now,
            },
          }),
          prisma.agentUpgradeTarget.update({
            where: { runId_vmId: { runId: input.runId, vmId: input.vmId } },
            data: { outcome: "RUNNING", operationId: input.operationId, startedAt: now },
          }),
        ]);
        return { started: true };
      } catch (err) {
        if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002")) throw err;
        const holder = await prisma.operation.findFirst({ where: { targetType: "vm", targetId: input.vmId, state: { in: ["PENDING", "RUNNING", "COMPENSATING"] } } });
        await prisma.agentUpgradeTarget.update({
          where: { runId_vmId: { runId: input.runId, vmId: input.vmId } },
          data: { outcome: "FAILED", errorCode: "OPERATION_IN_PROGRESS", errorMessage: `operation ${holder?.id ?? "?"} (${holder?.type ?? "?"}) is running on the VM`, finishedAt: now },
        });
        return { started: false, outcome: "failed" };
      }
    },

    async agentUpgradeTargetFinished(
      input: AgentUpgradeTargetRef & { outcome: "DONE" | "FAILED"; fromVersion?: string; toVersion?: string; errorCode?: string; errorMessage?: string },
    ): Promise<void> {
      await prisma.agentUpgradeTarget.update({
        where: { runId_vmId: { runId: input.runId, vmId: input.vmId } },
        data: {
          outcome: input.outcome,
          fromVersion: input.fromVersion ?? null,
          toVersion: input.toVersion ?? null,
          errorCode: input.errorCode ?? null,
          errorMessage: input.errorMessage ?? null,
          finishedAt: new Date(),
        },
      });
    },

    /** The run stopped: every VM whose turn never came says so. */
    async agentUpgradeStopped(runId: string): Promise<void> {
      await prisma.agentUpgradeTarget.updateMany({ where: { runId, outcome: "PENDING" }, data: { outcome: "NOT_STARTED", finishedAt: new Date() } });
    },
  };
}
