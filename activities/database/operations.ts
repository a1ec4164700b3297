import type { PrismaClient } from "@prisma/client";

export interface StepRef {
  step: string;
  kind: "STEP" | "UNDO";
}

export interface StepTransition {
  operationId: string;
  /** The step that just finished, if any. */
  completed?: StepRef;
  /** The step about to run, if any. */
  started?: StepRef;
  progress: number;
}

export interface StepFailure extends StepRef {
  operationId: string;
  errorCode: string;
  errorMessage: string;
}

export interface OperationOutcome {
  operationId: string;
  state: "COMPLETED" | "FAILED" | "CANCELLED";
  /** The last step, finished in the same write. */
  completed?: StepRef;
  errorCode?: string;
  errorMessage?: string;
}

const UNFINISHED = ["PENDING", "RUNNING", "COMPENSATING"] as const;

/**
 * Keeps an operation's row current while its workflow runs: every step and undo with its start
 * and end times, the current step and the percent done. One write per transition (the previous
 * step's end and the next one's start together) keeps the record cheap enough to sit on every
 * step. Every write is idempotent (keyed by operation + step + kind), so a retried activity never
 * duplicates history, and a finished operation is never rewritten.
 */
export function createOperationActivities(prisma: PrismaClient) {
  return {
    /** One statement, so one round trip: it sits on every step of every operation. */
    async stepTransition(t: StepTransition): Promise<void> {
      const now = new Date();
      const undoing = t.started?.kind === "UNDO";
      const currentStep = t.started ? (undoing ? `undo ${t.started.step}` : t.started.step) : null;
      await prisma.$executeRaw`
        WITH finished AS (
          UPDATE "OperationStep" SET state = 'COMPLETED', "finishedAt" = ${now}
          WHERE "operationId" = ${t.operationId} AND name = ${t.completed?.step ?? null}::text
            AND kind = ${t.completed?.kind ?? null}::"StepKind" AND state = 'RUNNING'
        ), begun AS (
          INSERT INTO "OperationStep" ("operationId", name, kind, state, "startedAt")
          SELECT ${t.operationId}, ${t.started?.step ?? null}::text, ${t.started?.kind ?? null}::"StepKind", 'RUNNING', ${now}
          WHERE ${t.started?.step ?? null}::text IS NOT NULL
          ON CONFLICT ("operationId", name, kind) DO NOTHING
        )
        UPDATE "Operation" SET
          progress = ${t.progress},
          "currentStep" = COALESCE(${currentStep}::text, "currentStep"),
          state = CASE WHEN ${undoing} THEN 'COMPENSATING'::"OperationState" WHEN state = 'PENDING' THEN 'RUNNING'::"OperationState" ELSE state END,
          "startedAt" = COALESCE("startedAt", ${now}),
          "updatedAt" = ${now}
        WHERE id = ${t.operationId} AND state IN ('PENDING', 'RUNNING', 'COMPENSATING')`;
    },

    async stepFailed(event: StepFailure): Promise<void> {
      await prisma.operationStep.updateMany({
        where: { operationId: event.operationId, name: event.step, kind: event.kind },
        data: { state: "FAILED", finishedAt: new Date(), errorCode: event.errorCode, errorMessage: event.errorMessage },
      });
    },

    async operationFinished(outcome: OperationOutcome): Promise<void> {
      const now = new Date();
      await prisma.$transaction(async (tx) => {
        if (outcome.completed) {
          await tx.operationStep.updateMany({
            where: { operationId: outcome.operationId, name: outcome.completed.step, kind: outcome.completed.kind, state: "RUNNING" },
            data: { state: "COMPLETED", finishedAt: now },
          });
        }
        await tx.operation.updateMany({
          where: { id: outcome.operationId, state: { in: [...UNFINISHED] } },
          data: {
            state: outcome.state,
            progress: outcome.state === "COMPLETED" ? 100 : undefined,
            currentStep: null,
            errorCode: outcome.errorCode ?? null,
            errorMessage: outcome.errorMessage ?? null,
            finishedAt: now,
            startedAt: undefined,
          },
        });
        await tx.operation.updateMany({ where: { id: outcome.operationId, startedAt: null }, data: { startedAt: now } });
      });
    },
  };
}
