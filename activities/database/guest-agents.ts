import type { Prisma, PrismaClient } from "@prisma/client";
import type { GuestAgentStatus } from "../guest-agent/status";

/** One VM's agent status as its host saw it at `observedAt`; `since`: when `connected` last changed. */
export interface ReportedGuestAgent extends GuestAgentStatus {
  since: string;
  observedAt: string;
}

/** What changed among one host's guest agents since its last report. */
export interface GuestAgentReport {
  hostId: string;
  agents: ReportedGuestAgent[];
}

/** Writes guest agent reports (recordGuestAgents workflow) where the API reads them. */
export function createGuestAgentRecordActivities(prisma: PrismaClient) {
  return {
    /**
     * Only a VM placed on the reporting host is written (a report from a host that no longer runs
     * it, or about a VM of no one here, changes nothing); an older observation never replaces a newer.
     */
    async guestAgentsReported(report: GuestAgentReport): Promise<void> {
      const ids = report.agents.map((a) => a.vmId);
      const placed = new Set((await prisma.vm.findMany({ where: { id: { in: ids }, hostId: report.hostId }, select: { id: true } })).map((v) => v.id));
      for (const agent of report.agents.filter((a) => placed.has(a.vmId))) {
        const row = {
          connected: agent.connected,
          since: new Date(agent.since),
          qemuGaVersion: agent.qemuGaVersion,
          packageVersion: agent.packageVersion,
          osName: agent.os?.name ?? null,
          osVersion: agent.os?.version ?? null,
          osId: agent.os?.id ?? null,
          kernelRelease: agent.os?.kernelRelease ?? null,
          hostname: agent.hostname,
          interfaces: agent.interfaces as unknown as Prisma.InputJsonValue,
          filesystems: agent.filesystems,
          hostId: report.hostId,
          observedAt: new Date(agent.observedAt),
        };
        await prisma.$transaction(async (tx) => {
          const current = await tx.vmGuestAgent.findUnique({ where: { vmId: agent.vmId }, select: { observedAt: true } });
          if (current && current.observedAt > row.observedAt) return;
          await tx.vmGuestAgent.upsert({ where: { vmId: agent.vmId }, create: { vmId: agent.vmId, ...row }, update: row });
        });
      }
    },
  };
}
