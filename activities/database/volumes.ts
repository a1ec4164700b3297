import { Prisma, type PoolKind, type PrismaClient, type VolumeState } from "@prisma/client";
import type { FailedCleanupStep, Leftover, PendingCleanup } from "../../common/cleanup";
import { permanentFailure, transientFailure } from "../../common/errors";

export interface VolumeSpec {
  id: string;
  name: string;
  poolId: string;
  poolKind: PoolKind;
  /** The host holding it, for host-local (dir) pools; null on shared pools. */
  hostId: string | null;
  sizeBytes: number;
  state: VolumeState;
  vmId: string | null;
  targetDev: string | null;
  backingVolumeId: string | null;
  /** iSCSI pools: the volume's LUN (see Volume.lun). */
  lun: number | null;
  /** Linked clones reading this volume: while there are any, its data must not change. */
  cloneCount: number;
  /** The attached VM's host, where live changes (resize, hot-plug) must run. */
  vmHostId: string | null;
}

/**
 * Takes the volume's row lock for the rest of the transaction. A delete (its API check and its
 * validate step) and a linked clone of it (recording the clone) both take it, so one of them sees the
 * other: a clone recorded first makes the delete refuse, a delete begun first makes the clone refuse.
 */
export async function lockVolumeRow(tx: Prisma.TransactionClient, volumeId: string): Promise<boolean> {
  const rows = await tx.$queryRaw<{ id: string }[]>`SELECT "id" FROM "Volume" WHERE "id" = ${volumeId} FOR UPDATE`;
  return rows.length > 0;
}

/** Data disk devices, in the order they are handed out (sda.. on the virtio-scsi controller). */
export const DATA_DISK_TARGETS = Array.from({ length: 26 }, (_, i) => `sd${String.fromCharCode(97 + i)}`);

/** Volume rows: what the user sees in GET /v1/volumes. */
export function createVolumeRecordActivities(prisma: PrismaClient) {
  async function loadVolume(volumeId: string): Promise<VolumeSpec> {
    const v = await prisma.volume.findUnique({
      where: { id: volumeId },
      include: { pool: { select: { kind: true } }, vm: { select: { hostId: true } }, _count: { select: { clones: true } } },
    });
    if (!v) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${volumeId} does not exist`);
    return {
      id: v.id,
      name: v.name,
      poolId: v.poolId,
      poolKind: v.pool.kind,
      hostId: v.hostId,
      sizeBytes: Number(v.sizeBytes),
      state: v.state,
      vmId: v.vmId,
      targetDev: v.targetDev,
      backingVolumeId: v.backingVolumeId,
      lun: v.lun,
      cloneCount: v._count.clones,
      vmHostId: v.vm?.hostId ?? null,
    };
  }

  return {
    loadVolume,

    /**
     * deleteVolume's validate: under the volume's row lock, refuses (changing nothing) while it is
     * attached or the base of linked clones, else marks it DELETING. Check and mark are one
     * transaction: no clone can be recorded between them.
     */
    async volumeDeleting(volumeId: string): Promise<VolumeSpec> {
      await prisma.$transaction(async (tx) => {
        if (!(await lockVolumeRow(tx, volumeId))) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${volumeId} does not exist`);
        const v = await tx.volume.findUniqueOrThrow({ where: { id: volumeId }, include: { _count: { select: { clones: true } } } });
        if (!["READY", "FAILED", "DELETING", "ERROR"].includes(v.state)) throw permanentFailure("CONFLICT", `volume ${volumeId} is ${v.state}`);
        if (v.vmId) throw permanentFailure("VOLUME_IN_USE", `volume ${volumeId} is attached to VM ${v.vmId}; detach it first`);
        if (v._count.clones > 0) throw permanentFailure("VOLUME_IN_USE", `volume ${volumeId} is the base of ${v._count.clones} linked clones; delete them first`);
        await tx.volume.update({ where: { id: volumeId }, data: { state: "DELETING" } });
      });
      return loadVolume(volumeId);
    },

    /** A volume of a host-local pool lives on the host that made it: recorded once chosen. Idempotent. */
    async volumeHostChosen(input: { volumeId: string; hostId: string }): Promise<void> {
      await prisma.volume.updateMany({ where: { id: input.volumeId, pool: { kind: "dir" } }, data: { hostId: input.hostId } });
    },

    /** The create's (or clone's) last step: the volume exists with this shape. */
    async volumeReady(input: { volumeId: string; sizeBytes: number; format: string }): Promise<void> {
      await prisma.volume.update({ where: { id: input.volumeId }, data: { state: "READY", sizeBytes: BigInt(input.sizeBytes), format: input.format } });
    },

    /**
     * A create or clone that did not finish. Compensation removed the storage, so the row goes too;
     * unless the removal failed (`cleanup`): then the row stays in ERROR with its host and LUN (a LUN
     * whose wipe did not finish is never handed out again) until a repeated DELETE finishes it.
     */
    async volumeCreateFailed(input: { volumeId: string; cleanup?: PendingCleanup | null }): Promise<void> {
      if (!input.cleanup) {
        await prisma.volume.deleteMany({ where: { id: input.volumeId, state: "CREATING" } });
        return;
      }
      await prisma.volume.updateMany({
        where: { id: input.volumeId, state: "CREATING" },
        data: { state: "ERROR", cleanup: input.cleanup as unknown as Prisma.InputJsonValue },
      });
    },

    /** A delete that did not finish: ERROR with what is left, every reference kept (LUN too); a repeated DELETE finishes. */
    async volumeDeleteFailed(input: { volumeId: string; failed: FailedCleanupStep }): Promise<void> {
      const volume = await prisma.volume.findUnique({ where: { id: input.volumeId } });
      // A delete refused before it began (in use, not found) changed nothing.
      if (!volume || volume.state !== "DELETING") return;
      const left: Leftover = { kind: "volume", hostId: volume.hostId, poolId: volume.poolId, volumeId: volume.id, ...(volume.lun !== null ? { lun: volume.lun } : {}) };
      const cleanup: PendingCleanup = { operationId: input.failed.operationId, failed: [input.failed], remains: [left] };
      await prisma.volume.update({ where: { id: volume.id }, data: { state: "ERROR", cleanup: cleanup as unknown as Prisma.InputJsonValue } });
    },

    /** The delete's last step; its snapshot rows go with it. Idempotent. */
    async volumeDeleted(volumeId: string): Promise<void> {
      await prisma.volume.deleteMany({ where: { id: volumeId } });
    },

    async volumeResized(input: { volumeId: string; sizeBytes: number }): Promise<void> {
      await prisma.volume.update({ where: { id: input.volumeId }, data: { sizeBytes: BigInt(input.sizeBytes) } });
    },

    /**
     * Attach's first step: records the attachment and picks the VM's lowest free data disk device.
     * The unique (vmId, targetDev) index makes a racing attach to the same VM fail here and retry.
     * Idempotent: a volume already attached to this VM keeps its device.
     */
    async attachmentReserved(input: { volumeId: string; vmId: string }): Promise<string> {
      const volume = await prisma.volume.findUnique({ where: { id: input.volumeId } });
      if (!volume) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${input.volumeId} does not exist`);
      if (volume.vmId === input.vmId && volume.targetDev) return volume.targetDev;
      if (volume.vmId) throw permanentFailure("VOLUME_IN_USE", `volume ${input.volumeId} is attached to VM ${volume.vmId}`);
      const used = await prisma.volume.findMany({ where: { vmId: input.vmId, targetDev: { not: null } }, select: { targetDev: true } });
      const targetDev = DATA_DISK_TARGETS.find((t) => !used.some((u) => u.targetDev === t));
      if (!targetDev) throw permanentFailure("CONFLICT", `VM ${input.vmId} has no free data disk device`);
      try {
        await prisma.volume.update({ where: { id: input.volumeId, vmId: null }, data: { vmId: input.vmId, targetDev } });
      } catch (err) {
        // Another attach took the same device of this VM: a retry picks the next free one.
        if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") {
          throw transientFailure("CONFLICT", `attaching volume ${input.volumeId} raced another attach for ${targetDev}`);
        }
        // The volume was attached elsewhere meanwhile (no row matched vmId: null): retrying cannot help.
        if (err instanceof Prisma.PrismaClientKnownRequestError) throw permanentFailure("CONFLICT", `attaching volume ${input.volumeId} raced another attach`);
        throw err;
      }
      return targetDev;
    },

    /** Undo of attachmentReserved, and detach's last step. Idempotent. */
    async attachmentReleased(volumeId: string): Promise<void> {
      await prisma.volume.updateMany({ where: { id: volumeId, targetDev: { not: null } }, data: { vmId: null, targetDev: null } });
    },

    async snapshotRecorded(input: { volumeId: string; snapshotId: string; name: string }): Promise<void> {
      await prisma.volumeSnapshot.upsert({
        where: { volumeId_name: { volumeId: input.volumeId, name: input.name } },
        create: { id: input.snapshotId, volumeId: input.volumeId, name: input.name },
        update: {},
      });
    },

    async snapshotRemoved(input: { volumeId: string; name: string }): Promise<void> {
      await prisma.volumeSnapshot.deleteMany({ where: { volumeId: input.volumeId, name: input.name } });
    },
  };
}
