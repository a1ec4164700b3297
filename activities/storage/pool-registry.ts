import { permanentFailure } from "../../common/errors";
import type { StorageBackend } from "./backend";

/** The pools this host can reach, by pool id. */
export interface PoolRegistry {
  get(poolId: string): StorageBackend;
  entries(): [string, StorageBackend][];
}

export function createPoolRegistry(pools: Record<string, StorageBackend>): PoolRegistry {
  const byId = new Map(Object.entries(pools));
  return {
    get(poolId) {
      const backend = byId.get(poolId);
      if (!backend) throw permanentFailure("POOL_NOT_FOUND", `pool ${poolId} is not available on this host`);
      return backend;
    },
    entries: () => [...byId.entries()],
  };
}
