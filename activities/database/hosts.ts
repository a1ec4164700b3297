import type { PrismaClient } from "@prisma/client";

export interface HostFacts {
  hostId: string;
  hostname: string;
  cpuCount: number;
  memoryMiB: number;
  libvirtUri: string;
  domainType: "kvm" | "qemu";
  pools: { id: string; name: string; kind: "dir"; config: { path: string }; capacityBytes: number; freeBytes: number; volumeCount: number; health: "healthy" | "degraded" | "error" | "unmounted" }[];
}

/** What a host worker tells the control plane about itself when it starts. */
export function createHostRecordActivities(prisma: PrismaClient) {
  return {
    async hostAnnounced(facts: HostFacts): Promise<void> {
      const now = new Date();
      const host = {
        hostname: facts.hostname,
        cpuCount: facts.cpuCount,
        memoryMiB: facts.memoryMiB,
        libvirtUri: facts.libvirtUri,
        domainType: facts.domainType,
        state: "ONLINE" as const,
        lastSeenAt: now,
      };
      await prisma.$transaction(async (tx) => {
        await tx.host.upsert({ where: { id: facts.hostId }, create: { id: facts.hostId, ...host }, update: host });
        for (const pool of facts.pools) {
          await tx.storagePool.upsert({
            where: { id: pool.id },
            create: { id: pool.id, name: pool.name, kind: pool.kind, config: pool.config },
            update: { config: pool.config },
          });
          const status = {
            health: pool.health,
            capacityBytes: BigInt(pool.capacityBytes),
            freeBytes: BigInt(pool.freeBytes),
            volumeCount: pool.volumeCount,
            reportedAt: now,
          };
          await tx.storagePoolHost.upsert({
            where: { poolId_hostId: { poolId: pool.id, hostId: facts.hostId } },
            create: { poolId: pool.id, hostId: facts.hostId, ...status },
            update: status,
          });
        }
      });
    },
  };
}
