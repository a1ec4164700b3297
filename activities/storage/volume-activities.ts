import type { PoolRegistry } from "./pool-registry";
import type { VolumeInfo } from "./backend";

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
  };
}
