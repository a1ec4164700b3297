import type { Operation, Prisma, PrismaClient } from "@prisma/client";
import { WorkflowExecutionAlreadyStartedError, type Client } from "@temporalio/client";
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from "@temporalio/common";
import { WORKFLOW_TASK_TIMEOUT } from "./workflow-tasks";

/**
 * The transactional outbox of operations. The API commits an operation together with what is
 * needed to start its workflow (type, arguments, search attributes, summary: the arguments are
 * what the workflow history holds anyway, never a secret), then starts it. If the API dies in
 * between, or Temporal did not answer, the sweeper in the control-plane worker starts it later:
 * what the API committed happens, without any client having to come back. Starting is idempotent
 * by workflow id.
 *
 * Who starts a row is decided under its row lock: the sweeper claims a row (outboxClaimedAt) in
 * one transaction before starting it, and the API, when its own start failed, removes the row only
 * if nobody claimed or started it. So a client told "503, nothing was done" never sees the
 * operation run, and a claimed operation is always started (a sweeper that dies after its claim
 * leaves it to the next sweep).
 */
export interface WorkflowStart {
  workflowType: string;
  args: unknown[];
  searchAttributes: SearchAttributePair[];
  summary: string;
}

interface StoredSearchAttribute {
  name: string;
  type: SearchAttributeType;
  value: unknown;
}

/** The columns of the Operation row that let anyone start its workflow later. */
export function storedWorkflowStart(start: WorkflowStart) {
  return {
    workflowType: start.workflowType,
    workflowArgs: start.args as Prisma.InputJsonValue,
    workflowSearchAttributes: start.searchAttributes.map((a) => ({ name: a.key.name, type: a.key.type, value: a.value })) as unknown as Prisma.InputJsonValue,
    workflowSummary: start.summary,
  };
}

function recordedWorkflowStart(op: Operation): WorkflowStart | null {
  if (!op.workflowType || !Array.isArray(op.workflowArgs)) return null;
  const attributes = (op.workflowSearchAttributes ?? []) as unknown as StoredSearchAttribute[];
  return {
    workflowType: op.workflowType,
    args: op.workflowArgs,
    searchAttributes: attributes.map((a) => ({ key: defineSearchAttributeKey(a.name, a.type), value: a.value }) as SearchAttributePair),
    summary: op.workflowSummary ?? "",
  };
}

// StartWorkflowExecution answers in milliseconds; a start that takes longer than this is treated as
// Temporal being unavailable (the API then answers 503, or the sweeper tries again).
const START_DEADLINE_MS = 5_000;

/** Starts the workflow of an operation; a workflow that already exists (same id) counts as started. */
export async function startOperationWorkflow(client: Client, queue: string, op: Pick<Operation, "workflowId">, start: WorkflowStart): Promise<void> {
  try {
    await client.connection.withDeadline(Date.now() + START_DEADLINE_MS, () =>
      client.workflow.start(start.workflowType, {
        taskQueue: queue,
        workflowId: op.workflowId,
        args: start.args,
        typedSearchAttributes: start.searchAttributes,
        staticSummary: start.summary,
        workflowTaskTimeout: WORKFLOW_TASK_TIMEOUT,
      }),
    );
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

export const UNFINISHED_OPERATION_STATES = ["PENDING", "RUNNING", "COMPENSATING"] as const;

/**
 * Closes an operation that cannot run (FAILED/WORKFLOW_ABORTED) and takes its resource out of
 * its transitional state (FAILED), so nothing stays CREATING or DELETING forever.
 */
export async function closeAbandonedOperation(prisma: PrismaClient, operation: Pick<Operation, "id" | "targetType" | "targetId">, reason: string): Promise<void> {
  await prisma.$transaction(async (tx) => {
    await tx.operation.updateMany({
      where: { id: operation.id, state: { in: [...UNFINISHED_OPERATION_STATES] } },
      data: { state: "FAILED", errorCode: "WORKFLOW_ABORTED", errorMessage: reason, finishedAt: new Date(), currentStep: null },
    });
    const failed = { errorCode: "WORKFLOW_ABORTED", errorMessage: reason };
    switch (operation.targetType) {
      case "vm":
        await tx.vm.updateMany({ where: { id: operation.targetId, state: { in: ["CREATING", "DELETING"] } }, data: { state: "FAILED", ...failed } });
        break;
      case "volume":
        await tx.volume.updateMany({ where: { id: operation.targetId, state: { in: ["CREATING", "DELETING"] } }, data: { state: "FAILED" } });
        break;
      case "image":
        await tx.image.updateMany({ where: { id: operation.targetId, status: { in: ["PENDING", "DOWNLOADING", "DELETING"] } }, data: { status: "FAILED", ...failed } });
        break;
    }
  });
}

export interface OutboxOptions {
  controlPlaneQueue: string;
  /** A row younger than this is left to the API that is starting it. */
  graceMs: number;
  /** A claim older than this whose workflow was not marked started is taken again (its sweeper died). */
  reclaimAfterMs: number;
}

export interface SweepResult {
  started: string[];
  closed: string[];
}

/**
 * One pass over the outbox: every PENDING operation whose workflow was never marked started and is
 * older than the grace period is claimed and started, or closed when it cannot run (a row recorded
 * without its start, before this outbox existed). Temporal being down leaves the claim for the next
 * pass. Several sweepers may run at once: rows are claimed with SKIP LOCKED.
 */
export async function sweepOperationOutbox(prisma: PrismaClient, client: Client, options: OutboxOptions): Promise<SweepResult> {
  const result: SweepResult = { started: [], closed: [] };
  for (;;) {
    const claimed = await prisma.$queryRaw<Operation[]>`
      UPDATE "Operation" SET "outboxClaimedAt" = now()
      WHERE id = (
        SELECT id FROM "Operation"
        WHERE state = 'PENDING' AND "workflowStartedAt" IS NULL
          AND "createdAt" < now() - make_interval(secs => ${options.graceMs / 1000})
          AND ("outboxClaimedAt" IS NULL OR "outboxClaimedAt" < now() - make_interval(secs => ${options.reclaimAfterMs / 1000}))
        ORDER BY "createdAt" LIMIT 1 FOR UPDATE SKIP LOCKED
      )
      RETURNING *`;
    const op = claimed[0];
    if (!op) return result;
    const start = recordedWorkflowStart(op);
    if (!start) {
      await closeAbandonedOperation(prisma, op, "its workflow was never started and the operation does not record how to start it");
      result.closed.push(op.id);
      continue;
    }
    // Temporal down: the claim stays, and the row is taken again after reclaimAfterMs.
    await startOperationWorkflow(client, options.controlPlaneQueue, op, start);
    await markWorkflowStarted(prisma, op.id);
    result.started.push(op.id);
  }
}

export async function markWorkflowStarted(prisma: PrismaClient, operationId: string): Promise<void> {
  await prisma.operation.updateMany({ where: { id: operationId, workflowStartedAt: null }, data: { workflowStartedAt: new Date() } });
}

export interface OutboxSweeper {
  stop(): Promise<void>;
}

/**
 * Sweeps the outbox every `intervalMs` in the control-plane worker's process: beside the
 * workflows it starts, with the database it reads, and needing nothing from Temporal to be
 * scheduled (a Temporal-driven loop could not run when Temporal is what failed, nor start itself).
 * An operation the API committed but did not start is started within grace + interval.
 */
export function startOutboxSweeper(prisma: PrismaClient, client: Client, options: OutboxOptions & { intervalMs: number }): OutboxSweeper {
  let inFlight: Promise<void> = Promise.resolve();
  const tick = () => {
    inFlight = inFlight.then(async () => {
      try {
        const { started, closed } = await sweepOperationOutbox(prisma, client, options);
        for (const id of started) console.log(`[outbox] started the workflow of operation ${id} (its API did not)`);
        for (const id of closed) console.log(`[outbox] closed operation ${id}: it cannot be started`);
      } catch (err) {
        console.warn(`[outbox] sweep failed, next in ${options.intervalMs} ms: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  };
  const timer = setInterval(tick, options.intervalMs);
  tick();
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}
