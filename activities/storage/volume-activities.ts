import { Context } from "@temporalio/activity";
import { volumeBackend, type PoolRegistry } from "./pool-registry";
import type { LunAssignments, VolumeInfo, VolumeSource } from "./backend";

export interface VolumeRef {
  poolId: string;
  volumeId: string;
  /** iSCSI pools: the LUNs of the volumes this call touches. */
  lunAssignments?: LunAssignments;
}

export interface CreateDiskInput {
  poolId: string;
  volumeId: string;
  sizeBytes: number;
  /** Relative path of a base image in the pool: the disk becomes its copy-on-write child. */
  baseImage?: string | null;
}

/** Host activities on volumes; the pool backends do the work. */
export function createVolumeActivities(pools: PoolRegistry) {
  return {
    async createDisk(input: CreateDiskInput): Promise<VolumeInfo> {
      return pools.get(input.poolId).createVolume({
        volumeId: input.volumeId,
        sizeBytes: input.sizeBytes,
        source: input.baseImage ? { kind: "image", path: input.baseImage, cow: true } : { kind: "empty" },
      });
    },

    /** Undo of createDisk, and the delete's disk step. Success when already gone. */
    async deleteDisk(input: { poolId: string; volumeId: string }): Promise<void> {
      await pools.get(input.poolId).deleteVolume(input.volumeId);
    },

    /** createVolume's and cloneVolume's (linked) step. Idempotent: the backend finds its own earlier work. */
    async createVolume(input: VolumeRef & { sizeBytes: number; source: VolumeSource }): Promise<VolumeInfo> {
      return volumeBackend(pools, input.poolId, input.lunAssignments).createVolume({ volumeId: input.volumeId, sizeBytes: input.sizeBytes, source: input.source });
    },

    /** Undo of a create or clone, and deleteVolume's step. Success when already gone. */
    async deleteVolume(input: VolumeRef): Promise<void> {
      await volumeBackend(pools, input.poolId, input.lunAssignments).deleteVolume(input.volumeId);
    },

    /**
     * Full copy (cloneVolume, mode full). Heartbeats bytes copied; a cancel (delivered through the
     * heartbeat) kills the copy and the backend removes the partial target. A retry starts over: the
     * partial of an interrupted attempt is discarded, never resumed, so no half copy is ever published.
     */
    async copyVolume(input: { poolId: string; sourceVolumeId: string; targetVolumeId: string; lunAssignments?: LunAssignments }): Promise<VolumeInfo> {
      const ctx = Context.current();
      ctx.heartbeat({ bytesDone: 0 });
      return volumeBackend(pools, input.poolId, input.lunAssignments)
        .copyVolume(input.sourceVolumeId, input.targetVolumeId, (bytesDone, bytesTotal) => ctx.heartbeat({ bytesDone, bytesTotal }), ctx.cancellationSignal);
    },

    async createSnapshot(input: VolumeRef & { name: string }): Promise<void> {
      await pools.get(input.poolId).createSnapshot(input.volumeId, input.name);
    },

    /** Undo of createSnapshot, and the delete action. Success when already gone. */
    async deleteSnapshot(input: VolumeRef & { name: string }): Promise<void> {
      await pools.get(input.poolId).deleteSnapshot(input.volumeId, input.name);
    },

    async revertSnapshot(input: VolumeRef & { name: string }): Promise<void> {
      await pools.get(input.poolId).revertSnapshot(input.volumeId, input.name);
    },
  };
}
