import { parseSecretsKey, sealSecrets } from "../../common/sealed-secrets";
import type { PoolHealth, PrismaClient } from "@prisma/client";
import { DEFAULT_POOL_STALE_AFTER_MS } from "../../common/config";
import { permanentFailure } from "../../common/errors";
import type { PoolDefinition } from "../../common/pool-kinds";
import type { PoolStatus } from "../storage/backend";
import type { PoolReport } from "../storage/pool-activities";
import type { ChassisHealth } from "../ovn/chassis";

export interface HostPoolReport {
  hostId: string;
  pools: PoolReport[];
  /** The host's OVN chassis; null for a host that joins no network. */
  chassis?: ChassisHealth | null;
}

function chassisColumns(chassis: ChassisHealth | null | undefined, reportedAt: Date) {
  if (!chassis) return { chassisHealthy: false, chassisMessage: "the host joins no network (no OVN Southbound configured)", chassisReportedAt: reportedAt, physicalNetworks: [] };
  return { chassisHealthy: chassis.healthy, chassisMessage: chassis.message, chassisReportedAt: reportedAt, physicalNetworks: chassis.physicalNetworks };
}

export interface PoolFreshness {
  poolStaleAfterMs?: number;
}

/** The oldest report that still counts: older ones mean the host stopped reporting. */
export function freshSince(policy: PoolFreshness, now = new Date()): Date {
  return new Date(now.getTime() - (policy.poolStaleAfterMs ?? DEFAULT_POOL_STALE_AFTER_MS));
}

const statusColumns = (status: PoolStatus) => ({
  health: status.health as PoolHealth,
  capacityBytes: BigInt(Math.max(0, Math.round(status.capacityBytes))),
  freeBytes: BigInt(Math.max(0, Math.round(status.freeBytes))),
  volumeCount: status.volumeCount,
  message: status.message ?? null,
});

/** Pools and their assignment to hosts, as the pool workflows and the hosts' reports change them. */
export function createPoolRecordActivities(prisma: PrismaClient, policy: PoolFreshness & { secretsKey?: string }) {
  const secretsKey = parseSecretsKey(policy.secretsKey);
  return {
    /** What a host needs to reach the pool, its secrets sealed: only for the initPool host step. */
    async loadPoolDefinition(poolId: string): Promise<PoolDefinition> {
      const pool = await prisma.storagePool.findUnique({ where: { id: poolId }, include: { secret: true } });
      if (!pool) throw permanentFailure("POOL_NOT_FOUND", `pool ${poolId} does not exist`);
      return {
        id: pool.id,
        kind: pool.kind,
        config: pool.config as Record<string, unknown>,
        secrets: sealSecrets((pool.secret?.values ?? {}) as Record<string, string>, secretsKey),
      };
    },

    /** initStoragePool's record step: the pool is usable on these hosts. Idempotent. */
    async poolHostsInitialised(input: { poolId: string; hosts: { hostId: string; status: PoolStatus }[] }): Promise<void> {
      const reportedAt = new Date();
      await prisma.$transaction(
        input.hosts.map(({ hostId, status }) =>
          prisma.storagePoolHost.upsert({
            where: { poolId_hostId: { poolId: input.poolId, hostId } },
            create: { poolId: input.poolId, hostId, ...statusColumns(status), reportedAt },
            update: { ...statusColumns(status), reportedAt },
          }),
        ),
      );
    },

    /** The unassign step's record: the host no longer reaches the pool. Idempotent. */
    async poolHostRemoved(input: { poolId: string; hostId: string }): Promise<void> {
      await prisma.storagePoolHost.deleteMany({ where: { poolId: input.poolId, hostId: input.hostId } });
    },

    /** deletePool's record step. Refused while any volume is left (the API checked; this is the race). */
    async poolDeleted(poolId: string): Promise<void> {
      const volumes = await prisma.volume.count({ where: { poolId } });
      if (volumes > 0) throw permanentFailure("CONFLICT", `pool ${poolId} still has ${volumes} volumes`);
      await prisma.storagePool.deleteMany({ where: { id: poolId } });
    },

    /**
     * A host's periodic report. Only pools assigned to it are updated: a report about a pool the
     * control plane has since unassigned must not bring the assignment back.
     */
    async poolsReported(report: HostPoolReport): Promise<void> {
      const reportedAt = new Date();
      await prisma.$transaction([
        prisma.host.updateMany({ where: { id: report.hostId }, data: { lastSeenAt: reportedAt, ...chassisColumns(report.chassis, reportedAt) } }),
        ...report.pools.map((pool) =>
          prisma.storagePoolHost.updateMany({ where: { poolId: pool.poolId, hostId: report.hostId }, data: { ...statusColumns(pool), reportedAt } }),
        ),
      ]);
    },

    /**
     * A host to run a pool operation on: `preferred` when it reaches the pool, else any online host
     * with a fresh healthy report on it. POOL_UNAVAILABLE when none does.
     */
    async pickPoolHost(input: { poolId: string; preferred?: string | null }): Promise<string> {
      const candidates = await prisma.storagePoolHost.findMany({
        where: { poolId: input.poolId, health: "healthy", reportedAt: { gte: freshSince(policy) }, host: { state: "ONLINE" } },
        select: { hostId: true },
        orderBy: { hostId: "asc" },
      });
      const ids = candidates.map((c) => c.hostId);
      if (input.preferred) {
        if (ids.includes(input.preferred)) return input.preferred;
        throw permanentFailure("POOL_UNAVAILABLE", `pool ${input.poolId} is not healthy on host ${input.preferred}`);
      }
      const chosen = ids[0];
      if (!chosen) throw permanentFailure("POOL_UNAVAILABLE", `no online host reports pool ${input.poolId} healthy`);
      return chosen;
    },
  };
}
