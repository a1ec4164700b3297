import type { PrismaClient } from "@prisma/client";
import { permanentFailure } from "../../common/errors";
import { freshSince, type PoolFreshness } from "./pools";
import { hostChassisServes } from "./placement-networks";

export interface PlacementPolicy extends PoolFreshness {
  cpuAllocationRatio: number;
  memoryAllocationRatio: number;
}

export interface Placement {
  hostId: string;
  poolId: string;
}

interface CandidateRow {
  hostId: string;
  poolId: string;
}

/**
 * Chooses a host for a VM and reserves its CPU and memory in one transaction. The reservation is
 * the VM row's hostId: capacity in use is the sum over VMs placed on a host, so releasing is
 * clearing hostId and nothing can drift. The host row is locked (FOR UPDATE) so two placements
 * racing for the last slot cannot both win. Idempotent: a VM already placed keeps its placement.
 */
export function createPlacementActivities(prisma: PrismaClient, policy: PlacementPolicy) {
  return {
    async placeVm(vmId: string): Promise<Placement> {
      return prisma.$transaction(async (tx) => {
        const [vm] = await tx.$queryRaw<{ hostId: string | null; poolId: string | null; vcpus: number; memoryMiB: number; name: string; bootVolumeId: string; diskSizeGiB: number }[]>`
          SELECT "hostId", "poolId", vcpus, "memoryMiB", name, "bootVolumeId", "diskSizeGiB" FROM "Vm" WHERE id = ${vmId} FOR UPDATE`;
        if (!vm) throw permanentFailure("NOT_FOUND", `VM ${vmId} does not exist`);
        if (vm.hostId && vm.poolId) return { hostId: vm.hostId, poolId: vm.poolId };

        // Hosts with the pool (or, with no pool asked for, a local directory pool) assigned,
        // healthy and freshly reported, and every pool of the VM's data disks too; online, with
        // room for the VM; least loaded memory first.
        const fresh = freshSince(policy);
        const candidates = await tx.$queryRaw<CandidateRow[]>`
          SELECT h.id AS "hostId", ph."poolId" AS "poolId"
          FROM "Host" h
          JOIN "StoragePoolHost" ph ON ph."hostId" = h.id AND ph.health = 'healthy' AND ph."reportedAt" >= ${fresh}
          JOIN "StoragePool" p ON p.id = ph."poolId"
          LEFT JOIN LATERAL (
            SELECT COALESCE(SUM(v.vcpus), 0) AS cpu, COALESCE(SUM(v."memoryMiB"), 0) AS mem
            FROM "Vm" v WHERE v."hostId" = h.id
          ) used ON true
          WHERE h.state = 'ONLINE'
            AND (${vm.poolId}::text IS NULL AND p.kind = 'dir' OR p.id = ${vm.poolId})
            AND NOT EXISTS (
              SELECT 1 FROM "Volume" d
              WHERE d."vmId" = ${vmId} AND d.id <> ${vm.bootVolumeId}
                AND NOT EXISTS (
                  SELECT 1 FROM "StoragePoolHost" dh
                  WHERE dh."poolId" = d."poolId" AND dh."hostId" = h.id AND dh.health = 'healthy' AND dh."reportedAt" >= ${fresh}
                )
            )
            AND ${hostChassisServes(vmId, fresh)}
            AND used.cpu + ${vm.vcpus} <= h."cpuCount" * ${policy.cpuAllocationRatio}::float8
            AND used.mem + ${vm.memoryMiB} <= h."memoryMiB" * ${policy.memoryAllocationRatio}::float8
          ORDER BY used.mem::float8 / h."memoryMiB" ASC, h.id ASC
          LIMIT 1`;
        const chosen = candidates[0];
        if (!chosen) {
          throw permanentFailure(
            "NO_HOST_AVAILABLE",
            `no online host has ${vm.vcpus} vCPU and ${vm.memoryMiB} MiB free${vm.poolId ? ` with pool ${vm.poolId}` : ""} and all the VM's pools healthy (and, for a VM with NICs, a healthy OVN chassis)`,
          );
        }
        // Serialise placements on this host: re-check under the host's row lock.
        await tx.$queryRaw`SELECT id FROM "Host" WHERE id = ${chosen.hostId} FOR UPDATE`;
        const [used] = await tx.$queryRaw<{ cpu: number; mem: number }[]>`
          SELECT COALESCE(SUM(vcpus), 0)::int AS cpu, COALESCE(SUM("memoryMiB"), 0)::int AS mem FROM "Vm" WHERE "hostId" = ${chosen.hostId}`;
        const host = await tx.host.findUniqueOrThrow({ where: { id: chosen.hostId } });
        if (
          (used?.cpu ?? 0) + vm.vcpus > host.cpuCount * policy.cpuAllocationRatio ||
          (used?.mem ?? 0) + vm.memoryMiB > host.memoryMiB * policy.memoryAllocationRatio
        ) {
          throw permanentFailure("INSUFFICIENT_CAPACITY", `host ${chosen.hostId} filled up while placing VM ${vmId}`);
        }
        await tx.vm.update({ where: { id: vmId }, data: { hostId: chosen.hostId, poolId: chosen.poolId } });
        // The boot volume's record exists before its disk does, so no disk is ever unaccounted for.
        await tx.volume.upsert({
          where: { id: vm.bootVolumeId },
          create: {
            id: vm.bootVolumeId,
            name: `${vm.name}-boot`,
            poolId: chosen.poolId,
            hostId: chosen.hostId,
            vmId,
            sizeBytes: BigInt(vm.diskSizeGiB) * BigInt(1024 ** 3),
          },
          update: { poolId: chosen.poolId, hostId: chosen.hostId },
        });
        // Data disks on host-local pools live on the chosen host, as the boot disk does.
        await tx.volume.updateMany({
          where: { vmId, id: { not: vm.bootVolumeId }, state: "CREATING", pool: { kind: "dir" } },
          data: { hostId: chosen.hostId },
        });
        return { hostId: chosen.hostId, poolId: chosen.poolId };
      });
    },

    /** Undo of placeVm: gives the host's CPU and memory back and drops the unmade boot volume's record. Idempotent. */
    async releaseVm(vmId: string): Promise<void> {
      await prisma.$transaction([
        prisma.volume.deleteMany({ where: { vmId, state: "CREATING" } }),
        prisma.vm.updateMany({ where: { id: vmId }, data: { hostId: null } }),
      ]);
    },
  };
}
