import type { Prisma, StoragePool, StoragePoolHost } from "@prisma/client";
import { freshSince } from "../activities/database/pools";
import type { ControlPlaneConfig } from "../common/config";
import { ApiError } from "./problem";

/**
 * Thin provisioning with a limit. Volumes are thin (qcow2, RBD): a 64 TiB volume takes nothing until
 * written, and a pool that accepts without limit fills up under its guests, who then see I/O errors.
 * So each pool has a provisioning ratio (its own, else QX_POOL_PROVISIONING_RATIO, default 2 — as
 * CloudStack's storage.overprovisioning.factor): the virtual sizes of its volumes plus the sizes of
 * its images may reach ratio × capacity, and a volume beyond that is 409 INSUFFICIENT_CAPACITY.
 * iSCSI pools are exempt: their volumes are whole pre-provisioned LUNs, assigned only when one fits.
 */
export const DEFAULT_PROVISIONING_RATIO = 2;

export interface PoolCapacity {
  capacityBytes: number;
  freeBytes: number;
  volumeCount: number;
  /** False when no host reported on the pool recently: its capacity is not known now. */
  known: boolean;
}

/**
 * A pool's capacity from its hosts' fresh reports: a directory pool is a separate directory on each
 * host, so they sum; a shared pool is one store, so the freshest report speaks.
 */
export function poolCapacity(pool: Pick<StoragePool, "kind">, reports: StoragePoolHost[], since: Date): PoolCapacity {
  const fresh = reports.filter((h) => h.reportedAt >= since);
  if (pool.kind === "dir") {
    const sum = (key: "capacityBytes" | "freeBytes") => fresh.reduce((total, h) => total + Number(h[key]), 0);
    return { capacityBytes: sum("capacityBytes"), freeBytes: sum("freeBytes"), volumeCount: fresh.reduce((t, h) => t + h.volumeCount, 0), known: fresh.length > 0 };
  }
  const newest = [...fresh].sort((a, b) => b.reportedAt.getTime() - a.reportedAt.getTime())[0];
  return { capacityBytes: Number(newest?.capacityBytes ?? 0), freeBytes: Number(newest?.freeBytes ?? 0), volumeCount: newest?.volumeCount ?? 0, known: newest !== undefined };
}

export function provisioningRatio(pool: Pick<StoragePool, "provisioningRatio">, config: ControlPlaneConfig): number {
  return pool.provisioningRatio ?? config.poolProvisioningRatio ?? DEFAULT_PROVISIONING_RATIO;
}

/** What the pool has handed out: its volumes' virtual sizes and its images' sizes. */
export async function provisionedBytes(db: Prisma.TransactionClient, poolId: string): Promise<bigint> {
  const [volumes, images] = await Promise.all([
    db.volume.aggregate({ where: { poolId }, _sum: { sizeBytes: true } }),
    db.image.aggregate({ where: { poolId }, _sum: { sizeBytes: true } }),
  ]);
  return (volumes._sum.sizeBytes ?? 0n) + (images._sum.sizeBytes ?? 0n);
}

/** The provisioning figures a pool shows: provisioned vs used vs free, and what is still allowed. */
export function provisioningOf(pool: Pick<StoragePool, "provisioningRatio" | "kind">, capacity: PoolCapacity, provisioned: bigint, config: ControlPlaneConfig) {
  const ratio = provisioningRatio(pool, config);
  const limit = Math.floor(capacity.capacityBytes * ratio);
  return {
    provisionedBytes: Number(provisioned),
    usedBytes: Math.max(0, capacity.capacityBytes - capacity.freeBytes),
    freeBytes: capacity.freeBytes,
    provisioningRatio: ratio,
    provisionableBytes: pool.kind === "iscsi" ? null : Math.max(0, limit - Number(provisioned)),
  };
}

/**
 * Refuses (409 INSUFFICIENT_CAPACITY) `addBytes` more on the pool when it would provision beyond
 * ratio × capacity. Runs inside the transaction that records the volume, under the pool's row lock:
 * two creates at once cannot both take the last room. A pool no host reports on now is not judged
 * here (its capacity is unknown; the workflow finds no host for it and fails POOL_UNAVAILABLE).
 */
export async function expectPoolRoom(tx: Prisma.TransactionClient, config: ControlPlaneConfig, poolId: string, addBytes: bigint): Promise<void> {
  await tx.$queryRaw`SELECT "id" FROM "StoragePool" WHERE "id" = ${poolId} FOR UPDATE`;
  const pool = await tx.storagePool.findUnique({ where: { id: poolId }, include: { hosts: true } });
  if (!pool || pool.kind === "iscsi") return;
  const capacity = poolCapacity(pool, pool.hosts, freshSince(config));
  if (!capacity.known) return;
  const provisioned = await provisionedBytes(tx, poolId);
  const ratio = provisioningRatio(pool, config);
  const limit = BigInt(Math.floor(capacity.capacityBytes * ratio));
  if (provisioned + addBytes > limit) {
    throw new ApiError(
      "INSUFFICIENT_CAPACITY",
      `pool ${poolId} cannot provision ${addBytes} more bytes: ${provisioned} of ${limit} are provisioned (ratio ${ratio} × capacity ${capacity.capacityBytes})`,
      { poolId, provisionedBytes: Number(provisioned), provisionableBytes: Number(limit > provisioned ? limit - provisioned : 0n), requestedBytes: Number(addBytes) },
    );
  }
}

/** expectPoolRoom for several pools at once (a VM's disks), their locks taken in one order: no deadlock between two such requests. */
export async function expectPoolsRoom(tx: Prisma.TransactionClient, config: ControlPlaneConfig, needs: Map<string, bigint>): Promise<void> {
  for (const poolId of [...needs.keys()].sort()) await expectPoolRoom(tx, config, poolId, needs.get(poolId)!);
}
