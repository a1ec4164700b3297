import type { PoolDefinition } from "../../common/pool-kinds";
import type { FileEntry, PoolStatus } from "./backend";
import type { PoolRegistry } from "./pool-registry";

export interface PoolReport extends PoolStatus {
  poolId: string;
}

/** Host activities on whole pools: set up, tear down, report, browse. */
export function createPoolActivities(pools: PoolRegistry) {
  return {
    /** Step of initStoragePool: makes the pool usable here and reports its state. Idempotent. */
    async initPool(definition: PoolDefinition): Promise<PoolStatus> {
      const backend = await pools.register(definition);
      await backend.initPool();
      return backend.status();
    },

    /** Undo of initPool, and the unassign step: never deletes volumes. Success when unknown here. */
    async teardownPool(poolId: string): Promise<void> {
      const backend = pools.entries().find(([id]) => id === poolId)?.[1];
      if (backend) await backend.teardownPool();
      await pools.forget(poolId);
    },

    async listPoolFiles(input: { poolId: string; path: string }): Promise<FileEntry[]> {
      return pools.get(input.poolId).listFiles(input.path);
    },
  };
}

/** Every pool this host reaches, with its status; one unreadable pool does not hide the others. */
export async function reportPools(pools: PoolRegistry): Promise<PoolReport[]> {
  return Promise.all(
    pools.entries().map(async ([poolId, backend]) => {
      try {
        return { poolId, ...(await backend.status()) };
      } catch (err) {
        return { poolId, health: "error" as const, capacityBytes: 0, freeBytes: 0, volumeCount: 0, message: (err as Error).message };
      }
    }),
  );
}
