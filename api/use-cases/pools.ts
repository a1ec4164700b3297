import { randomUUID } from "node:crypto";
import { Prisma, type StoragePool } from "@prisma/client";
import { WorkflowFailedError } from "@temporalio/client";
import { ActivityFailure, ApplicationFailure } from "@temporalio/common";
import { freshSince } from "../../activities/database/pools";
import type { FileEntry } from "../../activities/storage/backend";
import { localPoolId } from "../../common/config";
import { isErrorCode } from "../../common/errors";
import { listPoolFilesWorkflowId } from "../../common/operations";
import { poolConfigSchemas, poolSecretSchemas } from "../../common/pool-kinds";
import type { InitStoragePoolInput } from "../../workflows/init-storage-pool";
import type { ListPoolFilesInput } from "../../workflows/list-pool-files";
import type { ReleaseStoragePoolInput } from "../../workflows/release-storage-pool";
import { WORKFLOW_TASK_TIMEOUT } from "../../common/workflow-tasks";
import { ApiError } from "../problem";
import type { CreatePoolBody, UpdatePoolBody } from "../schemas";
import { parse } from "../validate";
import { hostTimeouts, type ApiContext } from "./context";
import { startOperation, type StartedOperation } from "./start-operation";


// A file listing is answered while the user waits: a host that does not pick it up in 10 s is down.
const LISTING_SCHEDULE_TO_START_MS = 10_000;

export async function requirePool(ctx: ApiContext, poolId: string): Promise<StoragePool> {
  const pool = await ctx.prisma.storagePool.findUnique({ where: { id: poolId } });
  if (!pool) throw new ApiError("NOT_FOUND", `pool ${poolId} does not exist`);
  return pool;
}

/** Secrets never reach the Operation row (its input is shown to operators): only which ones were given. */
function withoutSecrets<T extends { secrets?: unknown }>(body: T) {
  const { secrets, ...rest } = body;
  return { ...rest, secretsGiven: Object.keys((secrets ?? {}) as object).sort() };
}

async function requireHosts(tx: Prisma.TransactionClient, hostIds: string[]): Promise<void> {
  const found = await tx.host.findMany({ where: { id: { in: hostIds } }, select: { id: true } });
  const missing = hostIds.filter((id) => !found.some((h) => h.id === id));
  if (missing.length) throw new ApiError("VALIDATION_FAILED", `no such host: ${missing.join(", ")}`);
}

async function requireFreeName(tx: Prisma.TransactionClient, name: string, exceptPoolId?: string): Promise<void> {
  const clash = await tx.storagePool.findUnique({ where: { name } });
  if (clash && clash.id !== exceptPoolId) throw new ApiError("CONFLICT", `a pool named ${name} exists (${clash.id})`);
}

/** A host's announced local pool is the host's own: it comes and goes with the host, not through the API. */
function refuseLocalPool(pool: StoragePool, hostIds: string[]): void {
  if (hostIds.some((hostId) => pool.id === localPoolId(hostId))) {
    throw new ApiError("CONFLICT", `pool ${pool.id} is its host's own local pool`);
  }
}

/** Records the pool (its secrets apart) and starts initStoragePool on the hosts given. */
export async function createPool(ctx: ApiContext, body: CreatePoolBody, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const poolId = randomUUID();
  const hostIds = [...new Set(body.hostIds)];
  return startOperation(ctx, {
    type: "create-pool",
    targetType: "pool",
    targetId: poolId,
    requestedBy: user,
    idempotencyKey,
    requestBody: body,
    recordedInput: withoutSecrets(body),
    workflowType: "initStoragePool",
    workflowArgs: (operationId): [InitStoragePoolInput] => [{ operationId, poolId, hostIds, timeouts: hostTimeouts(ctx) }],
    summary: `Create ${body.kind} pool ${body.name} on ${hostIds.length} hosts`,
    searchAttributes: [],
    inTransaction: async (tx) => {
      await requireFreeName(tx, body.name);
      await requireHosts(tx, hostIds);
      await tx.storagePool.create({ data: { id: poolId, name: body.name, kind: body.kind, config: body.config, provisioningRatio: body.provisioningRatio ?? null } });
      if (body.secrets && Object.keys(body.secrets).length) {
        await tx.storagePoolSecret.create({ data: { poolId, values: body.secrets as Prisma.InputJsonValue } });
      }
    },
  });
}

/**
 * Renames a pool; its configuration and secrets change only while no host uses it (a host would
 * otherwise keep reaching the old store under the new description).
 */
export async function updatePool(ctx: ApiContext, poolId: string, body: UpdatePoolBody): Promise<void> {
  const pool = await requirePool(ctx, poolId);
  await ctx.prisma.$transaction(async (tx) => {
    if (body.name) await requireFreeName(tx, body.name, poolId);
    if (body.config || body.secrets) {
      if ((await tx.storagePoolHost.count({ where: { poolId } })) > 0) {
        throw new ApiError("CONFLICT", `pool ${poolId} is assigned to hosts; unassign it before changing its configuration`);
      }
    }
    const config = body.config ? parse(poolConfigSchemas[pool.kind], body.config, "config") : undefined;
    if (body.secrets) {
      const values = parse(poolSecretSchemas[pool.kind], body.secrets, "secrets") as Prisma.InputJsonValue;
      await tx.storagePoolSecret.upsert({ where: { poolId }, create: { poolId, values }, update: { values } });
    }
    const ratio = body.provisioningRatio !== undefined ? { provisioningRatio: body.provisioningRatio } : {};
    await tx.storagePool.update({ where: { id: poolId }, data: { ...(body.name ? { name: body.name } : {}), ...(config ? { config } : {}), ...ratio } });
  });
}

export async function assignPool(ctx: ApiContext, poolId: string, hostId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const pool = await requirePool(ctx, poolId);
  refuseLocalPool(pool, [hostId]);
  if (await ctx.prisma.storagePoolHost.findUnique({ where: { poolId_hostId: { poolId, hostId } } })) {
    throw new ApiError("CONFLICT", `pool ${poolId} is already assigned to host ${hostId}`);
  }
  return startOperation(ctx, {
    type: "assign-pool",
    targetType: "pool",
    targetId: poolId,
    requestedBy: user,
    idempotencyKey,
    requestBody: { hostId },
    workflowType: "initStoragePool",
    workflowArgs: (operationId): [InitStoragePoolInput] => [{ operationId, poolId, hostIds: [hostId], timeouts: hostTimeouts(ctx) }],
    summary: `Assign pool ${pool.name} to host ${hostId}`,
    searchAttributes: [],
    inTransaction: (tx) => requireHosts(tx, [hostId]),
  });
}

/** Refused while a volume of the pool is in use on the host: a local volume there, or one attached to a VM there. */
export async function unassignPool(ctx: ApiContext, poolId: string, hostId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const pool = await requirePool(ctx, poolId);
  refuseLocalPool(pool, [hostId]);
  if (!(await ctx.prisma.storagePoolHost.findUnique({ where: { poolId_hostId: { poolId, hostId } } }))) {
    throw new ApiError("NOT_FOUND", `pool ${poolId} is not assigned to host ${hostId}`);
  }
  const inUse = await ctx.prisma.volume.count({ where: { poolId, OR: [{ hostId }, { vm: { hostId } }] } });
  if (inUse > 0) throw new ApiError("VOLUME_IN_USE", `${inUse} volumes of pool ${poolId} are in use on host ${hostId}`);
  return startOperation(ctx, {
    type: "unassign-pool",
    targetType: "pool",
    targetId: poolId,
    requestedBy: user,
    idempotencyKey,
    requestBody: { hostId },
    workflowType: "releaseStoragePool",
    workflowArgs: (operationId): [ReleaseStoragePoolInput] => [{ operationId, poolId, hostIds: [hostId], deletePool: false, timeouts: hostTimeouts(ctx) }],
    summary: `Unassign pool ${pool.name} from host ${hostId}`,
    searchAttributes: [],
  });
}

export async function deletePool(ctx: ApiContext, poolId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const pool = await requirePool(ctx, poolId);
  const hostIds = (await ctx.prisma.storagePoolHost.findMany({ where: { poolId }, orderBy: { hostId: "asc" } })).map((h) => h.hostId);
  refuseLocalPool(pool, hostIds);
  const volumes = await ctx.prisma.volume.count({ where: { poolId } });
  if (volumes > 0) throw new ApiError("CONFLICT", `pool ${poolId} still holds ${volumes} volumes`);
  return startOperation(ctx, {
    type: "delete-pool",
    targetType: "pool",
    targetId: poolId,
    requestedBy: user,
    idempotencyKey,
    requestBody: {},
    workflowType: "releaseStoragePool",
    workflowArgs: (operationId): [ReleaseStoragePoolInput] => [{ operationId, poolId, hostIds, deletePool: true, timeouts: hostTimeouts(ctx) }],
    summary: `Delete pool ${pool.name}`,
    searchAttributes: [],
  });
}

/**
 * Lexical half of the confinement (the host resolves symlinks): a path must be relative, without
 * `..`, escapes or backslashes. Express has already percent-decoded the query once, so a `%` left
 * here is an encoded traversal attempt (%252e%252e), never a name to look up.
 */
function checkPoolPath(userPath: string): string {
  const reject = (why: string) => new ApiError("INVALID_PATH", `path ${JSON.stringify(userPath)} ${why}`);
  if (/[\0\\%]/.test(userPath)) throw reject("contains a NUL byte, a backslash or percent-encoding");
  if (userPath.startsWith("/")) throw reject("is absolute");
  if (userPath.split("/").includes("..")) throw reject("leaves the pool");
  return userPath.split("/").filter((s) => s !== "" && s !== ".").join("/");
}

/** Lists a pool directory through a host that reaches the pool (a short workflow the API waits for). */
export async function listPoolFiles(ctx: ApiContext, poolId: string, userPath: string): Promise<FileEntry[]> {
  const path = checkPoolPath(userPath);
  await requirePool(ctx, poolId);
  const host = await ctx.prisma.storagePoolHost.findFirst({
    where: { poolId, health: "healthy", reportedAt: { gte: freshSince(ctx.config) }, host: { state: "ONLINE" } },
    orderBy: { reportedAt: "desc" },
  });
  if (!host) throw new ApiError("POOL_UNAVAILABLE", `no online host reports pool ${poolId} healthy`);
  try {
    return await ctx.temporal.workflow.execute("listPoolFiles", {
      taskQueue: ctx.config.controlPlaneQueue,
      workflowId: listPoolFilesWorkflowId(poolId, randomUUID()),
      args: [{ poolId, hostId: host.hostId, path, timeouts: { hostScheduleToStartMs: Math.min(ctx.config.hostScheduleToStartMs, LISTING_SCHEDULE_TO_START_MS) } }] satisfies [ListPoolFilesInput],
      workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
    });
  } catch (err) {
    const cause = err instanceof WorkflowFailedError && err.cause instanceof ActivityFailure ? err.cause.cause : undefined;
    if (cause instanceof ApplicationFailure && isErrorCode(cause.type)) throw new ApiError(cause.type, cause.message);
    throw err;
  }
}
