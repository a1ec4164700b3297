import { randomUUID } from "node:crypto";
import { Prisma, type Operation } from "@prisma/client";
import { WorkflowNotFoundError } from "@temporalio/client";
import type { SearchAttributePair } from "@temporalio/common";
import { keyedRequestHash, requestHashKey } from "../../common/request-hash";
import { OPERATION_ID, OPERATION_TYPE } from "../../common/search-attributes";
import { CREATING_OPERATIONS, operationWorkflowId, type OperationTargetType, type OperationType } from "../../common/operations";
import { closeAbandonedOperation, markWorkflowStarted, UNFINISHED_OPERATION_STATES, startOperationWorkflow, storedWorkflowStart, type WorkflowStart } from "../../common/operation-outbox";
import { summariseTemporalError } from "../temporal-probe";
import { ApiError } from "../problem";
import type { ApiContext } from "./context";

export interface OperationRequest {
  type: OperationType;
  targetType: OperationTargetType;
  targetId: string;
  requestedBy: string;
  idempotencyKey?: string;
  /**
   * What the caller sent, secret fields included: a reused Idempotency-Key with any other field
   * (a password too) is refused. Only its keyed hash is stored (common/request-hash.ts).
   */
  requestBody: unknown;
  /** What the operation row keeps of the request (operators see it): must be given when the body holds secrets. */
  recordedInput?: unknown;
  /** The workflow to run and its arguments, given the new operation's id. */
  workflowType: string;
  workflowArgs: (operationId: string) => unknown[];
  /** One line for the Temporal UI's workflow list. */
  summary: string;
  searchAttributes: SearchAttributePair[];
  /** Writes that must commit together with the operation row (e.g. the new VM's rows). */
  inTransaction?: (tx: Prisma.TransactionClient) => Promise<void>;
}

export interface StartedOperation {
  operation: Operation;
  /** True when an earlier request with the same Idempotency-Key already started it. */
  replayed: boolean;
}

const ACTIVE_STATES = UNFINISHED_OPERATION_STATES;


/**
 * Records an operation and starts its workflow. The database serialises operations on one
 * target (a partial unique index allows one unfinished operation per target), so a second
 * mutating request gets 409 naming the running one. A lock whose workflow is gone (terminated
 * by hand, never started) is released instead of blocking the resource forever.
 */
export async function startOperation(ctx: ApiContext, request: OperationRequest): Promise<StartedOperation> {
  const requestHash = keyedRequestHash(requestHashKey(ctx.secretsKey), request.requestBody ?? null);
  const replay = await findReplay(ctx, request, requestHash);
  if (replay) return { operation: replay, replayed: true };

  // Temporal down: refused before anything is recorded (the client retries after Retry-After).
  if (!ctx.temporalProbe.available()) throw new ApiError("TEMPORAL_UNAVAILABLE", "the workflow service (Temporal) is unavailable; nothing was recorded");
  const operationId = randomUUID();
  const workflowId = operationWorkflowId(request.type, request.targetId, operationId);
  const workflowStart: WorkflowStart = {
    workflowType: request.workflowType,
    args: request.workflowArgs(operationId),
    searchAttributes: [...request.searchAttributes, { key: OPERATION_TYPE, value: request.type }, { key: OPERATION_ID, value: operationId }],
    summary: request.summary,
  };
  let operation: Operation;
  try {
    operation = await insertOperation(ctx, request, { operationId, workflowId, requestHash, workflowStart });
  } catch (err) {
    if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002")) throw err;
    const raced = await findReplay(ctx, request, requestHash);
    if (raced) return { operation: raced, replayed: true };
    const active = await ctx.prisma.operation.findFirst({
      where: { targetType: request.targetType, targetId: request.targetId, state: { in: [...ACTIVE_STATES] } },
    });
    if (active && (await releaseIfAbandoned(ctx, active))) return startOperation(ctx, request);
    if (active) {
      throw new ApiError("OPERATION_IN_PROGRESS", `operation ${active.id} (${active.type}) is running on ${request.targetType} ${request.targetId}`, {
        operationId: active.id,
        operation: `/v1/operations/${active.id}`,
      });
    }
    throw err;
  }

  try {
    await startOperationWorkflow(ctx.temporal, ctx.config.controlPlaneQueue, operation, workflowStart);
  } catch (err) {
    if (await withdrawOperation(ctx, operation)) {
      throw new ApiError("TEMPORAL_UNAVAILABLE", `the operation was not recorded: its workflow could not be started (${summariseTemporalError(err)})`);
    }
    // The outbox sweeper had already taken it: it will start it, so the request is accepted.
    return { operation, replayed: false };
  }
  await markWorkflowStarted(ctx.prisma, operation.id);
  return { operation, replayed: false };
}

async function findReplay(ctx: ApiContext, request: OperationRequest, requestHash: string): Promise<Operation | null> {
  if (!request.idempotencyKey) return null;
  const existing = await ctx.prisma.operation.findUnique({
    where: { requestedBy_idempotencyKey: { requestedBy: request.requestedBy, idempotencyKey: request.idempotencyKey } },
  });
  // A create's target id is minted per request, so only the body identifies a repeated create.
  const sameTarget = CREATING_OPERATIONS.includes(request.type) || existing?.targetId === request.targetId;
  if (existing && (existing.requestHash !== requestHash || existing.type !== request.type || !sameTarget)) {
    throw new ApiError("IDEMPOTENCY_KEY_REUSED", `Idempotency-Key ${request.idempotencyKey} was used for a different request (operation ${existing.id})`, {
      operationId: existing.id,
    });
  }
  return existing;
}

function insertOperation(
  ctx: ApiContext,
  request: OperationRequest,
  ids: { operationId: string; workflowId: string; requestHash: string; workflowStart: WorkflowStart },
): Promise<Operation> {
  return ctx.prisma.$transaction(async (tx) => {
    await request.inTransaction?.(tx);
    return tx.operation.create({
      data: {
        id: ids.operationId,
        type: request.type,
        targetType: request.targetType,
        targetId: request.targetId,
        requestedBy: request.requestedBy,
        idempotencyKey: request.idempotencyKey ?? null,
        requestHash: ids.requestHash,
        workflowId: ids.workflowId,
        input: (request.recordedInput ?? request.requestBody ?? {}) as Prisma.InputJsonValue,
        ...storedWorkflowStart(ids.workflowStart),
      },
    });
  });
}

/**
 * True (and the operation closed as FAILED/WORKFLOW_ABORTED) when its workflow is no longer
 * running although the row says it is: terminated from the Temporal UI, timed out, or never
 * started. Also used when an operation is read, so no row shows RUNNING forever.
 */
export async function releaseIfAbandoned(ctx: ApiContext, operation: Operation): Promise<boolean> {
  if (!(ACTIVE_STATES as readonly string[]).includes(operation.state)) return false;
  let closedBecause: string;
  try {
    const description = await ctx.temporal.workflow.getHandle(operation.workflowId).describe();
    if (description.status.name === "RUNNING") return false;
    // Completed/failed/cancelled workflows write their own final state; give a just-finished one a moment.
    if (["COMPLETED", "FAILED", "CANCELLED"].includes(description.status.name)) {
      const fresh = await ctx.prisma.operation.findUnique({ where: { id: operation.id } });
      if (fresh && !(ACTIVE_STATES as readonly string[]).includes(fresh.state)) return true;
    }
    closedBecause = `its workflow ended as ${description.status.name} without closing the operation`;
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    // Not started yet: the outbox sweeper starts it (or closes it when it cannot run).
    if (!operation.workflowStartedAt && operation.state === "PENDING") return false;
    closedBecause = "its workflow no longer exists";
  }
  await closeAbandonedOperation(ctx.prisma, operation, closedBecause);
  return true;
}

/**
 * Takes back what the request committed — the operation and, for an operation that makes its
 * target, the target's rows — in one transaction, unless the outbox sweeper already claimed or
 * started it (then it runs, and false is returned).
 */
async function withdrawOperation(ctx: ApiContext, operation: Operation): Promise<boolean> {
  return ctx.prisma.$transaction(async (tx) => {
    const { count } = await tx.operation.deleteMany({ where: { id: operation.id, outboxClaimedAt: null, workflowStartedAt: null } });
    if (count === 0) return false;
    if (CREATING_OPERATIONS.includes(operation.type as OperationType)) await removeCreatedTarget(tx, operation.targetType as OperationTargetType, operation.targetId);
    return true;
  });
}

/** The rows a creating operation's request wrote (use cases' inTransaction); children cascade. */
async function removeCreatedTarget(tx: Prisma.TransactionClient, targetType: OperationTargetType, targetId: string): Promise<void> {
  switch (targetType) {
    case "vm":
      // Data disks are volumes of their own, made with the VM's request.
      await tx.volume.deleteMany({ where: { vmId: targetId, state: "CREATING" } });
      await tx.vm.deleteMany({ where: { id: targetId } });
      break;
    case "volume":
      await tx.volume.deleteMany({ where: { id: targetId } });
      break;
    case "pool":
      await tx.storagePool.deleteMany({ where: { id: targetId } });
      break;
    case "image":
      await tx.image.deleteMany({ where: { id: targetId } });
      break;
  }
}

