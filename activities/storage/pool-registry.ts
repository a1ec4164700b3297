import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { permanentFailure } from "../../common/errors";
import { POOL_ID, type PoolDefinition } from "../../common/pool-kinds";
import type { LunAssignments, StorageBackend } from "./backend";
import { buildPoolBackend, writePrivateFile, type PoolBackendFactory } from "./pool-backends";

/**
 * The pools this host can reach, by pool id: its own local pool (fixed at start) and every pool the
 * control plane assigned to it (initStoragePool hands over the definition). Assigned pools are
 * kept in `<stateDir>/pools/<id>/definition.json` (0600; its secrets stay sealed), so a
 * restarted worker still reaches them without the control plane sending them again.
 */
export interface PoolRegistry {
  get(poolId: string): StorageBackend;
  entries(): [string, StorageBackend][];
  /** Builds and remembers an assigned pool's backend; a known pool is rebuilt (its definition may have changed). */
  register(definition: PoolDefinition): Promise<StorageBackend>;
  /** Forgets an unassigned pool and its files on this host. Idempotent; fixed pools stay. */
  forget(poolId: string): Promise<void>;
  /** Rebuilds the pools remembered in the state directory (at worker start). */
  restore(): Promise<void>;
}

export interface AssignedPoolsOptions {
  stateDir: string;
  libvirtUri: string;
  secretsKey?: Buffer;
  build?: PoolBackendFactory;
}

export function createPoolRegistry(fixed: Record<string, StorageBackend>, assigned?: AssignedPoolsOptions): PoolRegistry {
  const byId = new Map(Object.entries(fixed));
  const fixedIds = new Set(byId.keys());
  const build = assigned?.build ?? buildPoolBackend;

  function poolDir(poolId: string): string {
    if (!assigned) throw permanentFailure("NOT_SUPPORTED", "this host takes no assigned pools");
    if (!POOL_ID.test(poolId)) throw permanentFailure("VALIDATION_FAILED", `invalid pool id ${JSON.stringify(poolId)}`);
    return path.join(assigned.stateDir, "pools", poolId);
  }

  async function load(definition: PoolDefinition): Promise<StorageBackend> {
    const backend = await build(definition, { libvirtUri: assigned!.libvirtUri, poolStateDir: poolDir(definition.id), secretsKey: assigned!.secretsKey });
    byId.set(definition.id, backend);
    return backend;
  }

  return {
    get(poolId) {
      const backend = byId.get(poolId);
      if (!backend) throw permanentFailure("POOL_NOT_FOUND", `pool ${poolId} is not available on this host`);
      return backend;
    },

    entries: () => [...byId.entries()],

    async register(definition) {
      const fixedBackend = fixedIds.has(definition.id) ? byId.get(definition.id) : undefined;
      if (fixedBackend) return fixedBackend;
      const dir = poolDir(definition.id);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const backend = await load(definition);
      await writePrivateFile(path.join(dir, "definition.json"), JSON.stringify(definition));
      return backend;
    },

    async forget(poolId) {
      if (fixedIds.has(poolId)) return;
      byId.delete(poolId);
      await rm(poolDir(poolId), { recursive: true, force: true });
    },

    async restore() {
      if (!assigned) return;
      const names = await readdir(path.join(assigned.stateDir, "pools")).catch(() => [] as string[]);
      for (const name of names.filter((n) => POOL_ID.test(n) && !fixedIds.has(n))) {
        const text = await readFile(path.join(poolDir(name), "definition.json"), "utf8").catch(() => undefined);
        // A pool dir without a definition is an assignment that never completed: nothing to reach.
        if (text === undefined) continue;
        // One pool this host cannot rebuild (a rotated QX_SECRETS_KEY, a changed schema) must not
        // keep the worker, its local pool and its VMs down: it is skipped, reports nothing, and the
        // control plane marks it stale on this host, which keeps placement away from it.
        await load(JSON.parse(text) as PoolDefinition).catch((err: unknown) =>
          console.error(`[pools] cannot restore pool ${name} on this host: ${(err as Error).message}`),
        );
      }
    },
  };
}

/** A pool's backend for a call on volumes; an iSCSI pool also learns their LUNs (the control plane's map). */
export function volumeBackend(pools: PoolRegistry, poolId: string, lunAssignments?: LunAssignments): StorageBackend {
  const backend = pools.get(poolId);
  if (!lunAssignments || Object.keys(lunAssignments).length === 0) return backend;
  if (!backend.withLunAssignments) throw permanentFailure("VALIDATION_FAILED", `pool ${poolId} is not a pool of LUNs`);
  return backend.withLunAssignments(lunAssignments);
}
