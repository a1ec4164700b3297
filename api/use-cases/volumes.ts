import { randomUUID } from "node:crypto";
import { Prisma, type StoragePool, type Volume } from "@prisma/client";
import type { SnapshotAction, SnapshotVolumeInput } from "../../workflows/snapshot-volume";
import type { AttachVolumeInput } from "../../workflows/attach-volume";
import type { CloneVolumeInput } from "../../workflows/clone-volume";
import type { CreateVolumeInput } from "../../workflows/create-volume";
import type { DeleteVolumeInput } from "../../workflows/delete-volume";
import type { DetachVolumeInput } from "../../workflows/detach-volume";
import type { ResizeVolumeInput } from "../../workflows/resize-volume";
import { lockVolumeRow } from "../../activities/database/volumes";
import { expectPoolRoom } from "../pool-capacity";
import { UNFINISHED_OPERATION_STATES } from "../../common/operation-outbox";
import { HOST_ID, VM_ID } from "../../common/search-attributes";
import { ApiError } from "../problem";
import type { CloneVolumeBody, CreateVolumeBody } from "../schemas";
import { hostTimeouts, type ApiContext } from "./context";
import { listPoolFiles } from "./pools";
import { startOperation, type StartedOperation } from "./start-operation";
import { requireVm } from "./vms";

const GiB = 1024 ** 3;


export async function requireVolume(ctx: ApiContext, volumeId: string): Promise<Volume> {
  const volume = await ctx.prisma.volume.findUnique({ where: { id: volumeId } });
  if (!volume) throw new ApiError("NOT_FOUND", `volume ${volumeId} does not exist`);
  return volume;
}

/** The early answer to what the workflow's validate step would refuse anyway (it re-checks: races). */
function expectReady(volume: Volume): void {
  if (volume.state !== "READY") throw new ApiError("CONFLICT", `volume ${volume.id} is ${volume.state}`);
}

function expectDetached(volume: Volume): void {
  if (volume.vmId) throw new ApiError("VOLUME_IN_USE", `volume ${volume.id} is attached to VM ${volume.vmId}; detach it first`);
}

async function expectNoClones(db: Prisma.TransactionClient, volume: Volume): Promise<void> {
  const clones = await db.volume.count({ where: { backingVolumeId: volume.id } });
  if (clones > 0) throw new ApiError("VOLUME_IN_USE", `volume ${volume.id} is the base of ${clones} linked clones`);
}

/** A volume whose delete is recorded but not yet begun is still READY: its operation says it is going. */
async function refuseWhileDeleting(tx: Prisma.TransactionClient, volume: Volume): Promise<void> {
  const deleting = await tx.operation.findFirst({ where: { targetType: "volume", targetId: volume.id, type: "delete-volume", state: { in: [...UNFINISHED_OPERATION_STATES] } } });
  if (deleting) {
    throw new ApiError("CONFLICT", `volume ${volume.id} is being deleted (operation ${deleting.id}); it cannot be cloned`, { operationId: deleting.id, operation: `/v1/operations/${deleting.id}` });
  }
}

/**
 * The LUNs of an iSCSI pool as a host lists them now (READ CAPACITY of each), for assigning one to
 * a new volume. Asked of the target at each create rather than cached from health reports: LUNs
 * are added and grown on the array, and a stale list would hand out a LUN that is not there.
 */
export async function targetLuns(ctx: ApiContext, poolId: string): Promise<LunOffer[]> {
  const entries = await listPoolFiles(ctx, poolId, "");
  return entries.flatMap((e) => {
    const lun = /^lun-(\d+)$/.exec(e.name)?.[1];
    return lun === undefined ? [] : [{ lun: Number(lun), sizeBytes: e.sizeBytes }];
  });
}

export interface LunOffer {
  lun: number;
  sizeBytes: number;
}

/**
 * Picks the smallest LUN of `offers` that holds `sizeBytes` and no volume of the pool has, inside
 * the transaction that records the volume. The unique (poolId, lun) index settles a race between two
 * creates: the loser's transaction fails (see lunRaceAsConflict).
 */
export async function assignLun(tx: Prisma.TransactionClient, poolId: string, offers: LunOffer[], sizeBytes: bigint, taken: number[] = []): Promise<number> {
  const used = new Set([...taken, ...(await tx.volume.findMany({ where: { poolId, lun: { not: null } }, select: { lun: true } })).map((v) => v.lun!)]);
  const fitting = offers.filter((o) => !used.has(o.lun) && BigInt(o.sizeBytes) >= sizeBytes).sort((a, b) => a.sizeBytes - b.sizeBytes || a.lun - b.lun);
  const chosen = fitting[0];
  if (!chosen) throw new ApiError("INSUFFICIENT_CAPACITY", `pool ${poolId} has no free LUN of ${sizeBytes} bytes or more`);
  return chosen.lun;
}

/** A concurrent create took the same LUN: the caller may simply retry. */
export async function lunRaceAsConflict<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002" && JSON.stringify(err.meta ?? {}).includes("lun")) {
      throw new ApiError("CONFLICT", "another volume took the same LUN at the same time; retry");
    }
    throw err;
  }
}

function refuseOnLuns(pool: Pick<StoragePool, "kind" | "id">, what: string): void {
  if (pool.kind === "iscsi") {
    throw new ApiError("NOT_SUPPORTED", `${what} is not supported on iSCSI pool ${pool.id}: its volumes are whole LUNs (use the array's snapshots and clones)`);
  }
}

const volumeAttributes = (volume: Volume) => [
  ...(volume.hostId ? [{ key: HOST_ID, value: volume.hostId }] : []),
  ...(volume.vmId ? [{ key: VM_ID, value: volume.vmId }] : []),
];

/** Records the volume (id chosen here, before any side effect) and starts createVolume. */
export async function createVolume(ctx: ApiContext, body: CreateVolumeBody, user: string, idempotencyKey?: string): Promise<StartedOperation & { volumeId: string }> {
  const volumeId = randomUUID();
  const sizeBytes = BigInt(body.sizeGiB) * BigInt(GiB);
  const pool = await ctx.prisma.storagePool.findUnique({ where: { id: body.poolId } });
  const offers = pool?.kind === "iscsi" ? await targetLuns(ctx, pool.id) : undefined;
  const started = await lunRaceAsConflict(() => startOperation(ctx, {
    type: "create-volume",
    targetType: "volume",
    targetId: volumeId,
    requestedBy: user,
    idempotencyKey,
    requestBody: body,
    workflowType: "createVolume",
    workflowArgs: (operationId): [CreateVolumeInput] => [{ operationId, volumeId, timeouts: hostTimeouts(ctx) }],
    summary: `Create volume ${body.name} (${body.sizeGiB} GiB) in pool ${body.poolId}`,
    searchAttributes: [],
    inTransaction: async (tx) => {
      if (!(await tx.storagePool.findUnique({ where: { id: body.poolId } }))) throw new ApiError("VALIDATION_FAILED", `pool ${body.poolId} does not exist`);
      await expectPoolRoom(tx, ctx.config, body.poolId, sizeBytes);
      const lun = offers ? await assignLun(tx, body.poolId, offers, sizeBytes) : null;
      await tx.volume.create({ data: { id: volumeId, name: body.name, poolId: body.poolId, sizeBytes, lun } });
    },
  }));
  return { ...started, volumeId: started.operation.targetId };
}

/**
 * The volume as it is now, under its row lock for the rest of the transaction (lockVolumeRow): the
 * checks made on it hold until the operation is recorded.
 */
async function lockedVolume(tx: Prisma.TransactionClient, volumeId: string): Promise<Volume> {
  if (!(await lockVolumeRow(tx, volumeId))) throw new ApiError("NOT_FOUND", `volume ${volumeId} does not exist`);
  return tx.volume.findUniqueOrThrow({ where: { id: volumeId } });
}

/**
 * Refused (409) while the volume is attached or is the base of linked clones: checked under the
 * volume's row lock where the operation is recorded, so a clone recorded meanwhile is seen (and the
 * workflow's validate checks again under the same lock, refusing without changing the volume).
 */
export async function deleteVolume(ctx: ApiContext, volumeId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const volume = await requireVolume(ctx, volumeId);
  expectDetached(volume);
  await expectNoClones(ctx.prisma, volume);
  return startOperation(ctx, {
    type: "delete-volume",
    targetType: "volume",
    targetId: volumeId,
    requestedBy: user,
    idempotencyKey,
    requestBody: {},
    workflowType: "deleteVolume",
    workflowArgs: (operationId): [DeleteVolumeInput] => [{ operationId, volumeId, timeouts: hostTimeouts(ctx) }],
    summary: `Delete volume ${volume.name}`,
    searchAttributes: volumeAttributes(volume),
    inTransaction: async (tx) => {
      const now = await lockedVolume(tx, volumeId);
      expectDetached(now);
      await expectNoClones(tx, now);
    },
  });
}

export async function resizeVolume(ctx: ApiContext, volumeId: string, sizeGiB: number, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const volume = await requireVolume(ctx, volumeId);
  expectReady(volume);
  const sizeBytes = sizeGiB * GiB;
  if (sizeBytes <= Number(volume.sizeBytes)) throw new ApiError("VALIDATION_FAILED", `volume ${volumeId} is ${volume.sizeBytes} bytes; volumes only grow`);
  await expectNoClones(ctx.prisma, volume);
  return startOperation(ctx, {
    type: "resize-volume",
    targetType: "volume",
    targetId: volumeId,
    requestedBy: user,
    idempotencyKey,
    requestBody: { sizeGiB },
    workflowType: "resizeVolume",
    workflowArgs: (operationId): [ResizeVolumeInput] => [{ operationId, volumeId, sizeBytes, timeouts: hostTimeouts(ctx) }],
    summary: `Grow volume ${volume.name} to ${sizeGiB} GiB`,
    searchAttributes: volumeAttributes(volume),
    inTransaction: (tx) => expectPoolRoom(tx, ctx.config, volume.poolId, BigInt(sizeBytes) - volume.sizeBytes),
  });
}

/**
 * Records the new volume (CREATING, in the source's pool; a linked clone names its base, which the
 * database then refuses to delete first) and starts cloneVolume. Like a create, the operation's
 * target is the new volume (its id minted here), so a replayed request finds the same clone.
 */
export async function cloneVolume(
  ctx: ApiContext,
  sourceVolumeId: string,
  body: CloneVolumeBody,
  user: string,
  idempotencyKey?: string,
): Promise<StartedOperation & { volumeId: string }> {
  const source = await requireVolume(ctx, sourceVolumeId);
  const pool = await ctx.prisma.storagePool.findUniqueOrThrow({ where: { id: source.poolId } });
  if (body.mode === "linked") refuseOnLuns(pool, "a linked clone");
  expectReady(source);
  expectDetached(source);
  const offers = pool.kind === "iscsi" ? await targetLuns(ctx, pool.id) : undefined;
  const volumeId = randomUUID();
  const started = await lunRaceAsConflict(() => startOperation(ctx, {
    type: "clone-volume",
    targetType: "volume",
    targetId: volumeId,
    requestedBy: user,
    idempotencyKey,
    requestBody: { ...body, sourceVolumeId },
    workflowType: "cloneVolume",
    workflowArgs: (operationId): [CloneVolumeInput] => [{ operationId, sourceVolumeId, volumeId, mode: body.mode, timeouts: hostTimeouts(ctx) }],
    summary: `${body.mode === "linked" ? "Linked" : "Full"} clone of volume ${source.name} as ${body.name}`,
    searchAttributes: volumeAttributes(source),
    inTransaction: async (tx) => {
      // Under the source's row lock: a delete recorded or begun meanwhile is seen (and one after this waits and sees the clone).
      const now = await lockedVolume(tx, sourceVolumeId);
      expectReady(now);
      expectDetached(now);
      await refuseWhileDeleting(tx, now);
      // A linked clone is thin too: it may grow to the full size of its source.
      await expectPoolRoom(tx, ctx.config, source.poolId, source.sizeBytes);
      await tx.volume.create({
        data: {
          id: volumeId,
          name: body.name,
          poolId: source.poolId,
          hostId: source.hostId,
          sizeBytes: source.sizeBytes,
          backingVolumeId: body.mode === "linked" ? source.id : null,
          lun: offers ? await assignLun(tx, source.poolId, offers, source.sizeBytes) : null,
        },
      });
    },
  }));
  return { ...started, volumeId: started.operation.targetId };
}

export async function snapshotAction(
  ctx: ApiContext,
  volumeId: string,
  action: SnapshotAction,
  name: string,
  user: string,
  idempotencyKey?: string,
): Promise<StartedOperation> {
  const volume = await requireVolume(ctx, volumeId);
  refuseOnLuns(await ctx.prisma.storagePool.findUniqueOrThrow({ where: { id: volume.poolId } }), "a snapshot");
  expectReady(volume);
  expectDetached(volume);
  const existing = await ctx.prisma.volumeSnapshot.findUnique({ where: { volumeId_name: { volumeId, name } } });
  if (action === "create" && existing) throw new ApiError("CONFLICT", `volume ${volumeId} already has a snapshot ${name}`);
  if (action !== "create" && !existing) throw new ApiError("NOT_FOUND", `volume ${volumeId} has no snapshot ${name}`);
  if (action === "revert") await expectNoClones(ctx.prisma, volume);
  const snapshotId = existing?.id ?? randomUUID();
  return startOperation(ctx, {
    type: `${action}-snapshot`,
    targetType: "volume",
    targetId: volumeId,
    requestedBy: user,
    idempotencyKey,
    requestBody: { name },
    workflowType: "snapshotVolume",
    workflowArgs: (operationId): [SnapshotVolumeInput] => [{ operationId, volumeId, action, name, snapshotId, timeouts: hostTimeouts(ctx) }],
    summary: `${action} snapshot ${name} of volume ${volume.name}`,
    searchAttributes: volumeAttributes(volume),
  });
}

export async function attachVolume(ctx: ApiContext, volumeId: string, vmId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const volume = await requireVolume(ctx, volumeId);
  expectReady(volume);
  expectDetached(volume);
  await expectNoClones(ctx.prisma, volume);
  const vm = await requireVm(ctx, vmId);
  return startOperation(ctx, {
    type: "attach-volume",
    targetType: "volume",
    targetId: volumeId,
    requestedBy: user,
    idempotencyKey,
    requestBody: { vmId },
    workflowType: "attachVolume",
    workflowArgs: (operationId): [AttachVolumeInput] => [{ operationId, volumeId, vmId, timeouts: hostTimeouts(ctx) }],
    summary: `Attach volume ${volume.name} to VM ${vm.name}`,
    searchAttributes: [{ key: VM_ID, value: vmId }, ...(vm.hostId ? [{ key: HOST_ID, value: vm.hostId }] : [])],
  });
}

export async function detachVolume(ctx: ApiContext, volumeId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const volume = await requireVolume(ctx, volumeId);
  if (!volume.vmId || !volume.targetDev) throw new ApiError("CONFLICT", `volume ${volumeId} is not attached as a data disk`);
  return startOperation(ctx, {
    type: "detach-volume",
    targetType: "volume",
    targetId: volumeId,
    requestedBy: user,
    idempotencyKey,
    requestBody: {},
    workflowType: "detachVolume",
    workflowArgs: (operationId): [DetachVolumeInput] => [{ operationId, volumeId, timeouts: hostTimeouts(ctx) }],
    summary: `Detach volume ${volume.name} from VM ${volume.vmId}`,
    searchAttributes: volumeAttributes(volume),
  });
}
