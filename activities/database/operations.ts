import type { PrismaClient } from "@prisma/client";

export interface StepEvent {
  operationId: string;
  step: string;
  kind: "STEP" | "UNDO";
}

export interface StepFailure extends StepEvent {
  errorCode: string;
  errorMessage: string;
}

export interface OperationOutcome {
  operationId: string;
  state: "COMPLETED" | "FAILED" | "CANCELLED";
  errorCode?: string;
  errorMessage?: string;
}

/**
 * Keeps an operation's row current while its workflow runs: one event per step transition with its
 * time, the current step and the percent done. Every write is idempotent (upserts keyed by
 * operation + step + kind), so a retried activity never duplicates history.
 */
export function createOperationActivities(prisma: PrismaClient) {
  return {
    async operationStarted(operationId: string): Promise<void> {
      await prisma.operation.updateMany({
        where: { id: operationId, state: "PENDING" },
        data: { state: "RUNNING", startedAt: new Date() },
      });
    },

    async stepStarted(event: StepEvent & { progress: number }): Promise<void> {
      const now = new Date();
      await prisma.$transaction([
        prisma.operationStep.upsert({
          where: { operationId_name_kind: { operationId: event.operationId, name: event.step, kind: event.kind } },
          create: { operationId: event.operationId, name: event.step, kind: event.kind, state: "RUNNING", startedAt: now },
          update: {},
        }),
        prisma.operation.update({
          where: { id: event.operationId },
          data: {
            currentStep: event.kind === "UNDO" ? `undo ${event.step}` : event.step,
            progress: event.progress,
            ...(event.kind === "UNDO" ? { state: "COMPENSATING" } : {}),
          },
        }),
      ]);
    },

    async stepCompleted(event: StepEvent & { progress: number }): Promise<void> {
      await prisma.$transaction([
        prisma.operationStep.update({
          where: { operationId_name_kind: { operationId: event.operationId, name: event.step, kind: event.kind } },
          data: { state: "COMPLETED", finishedAt: new Date() },
        }),
        prisma.operation.update({ where: { id: event.operationId }, data: { progress: event.progress } }),
      ]);
    },

    async stepFailed(event: StepFailure): Promise<void> {
      await prisma.operationStep.update({
        where: { operationId_name_kind: { operationId: event.operationId, name: event.step, kind: event.kind } },
        data: { state: "FAILED", finishedAt: new Date(), errorCode: event.errorCode, errorMessage: event.errorMessage },
      });
    },

    /** Final state; a finished operation is never rewritten (a retried call is a no-op). */
    async operationFinished(outcome: OperationOutcome): Promise<void> {
      await prisma.operation.updateMany({
        where: { id: outcome.operationId, state: { in: ["PENDING", "RUNNING", "COMPENSATING"] } },
        data: {
          state: outcome.state,
          progress: outcome.state === "COMPLETED" ? 100 : undefined,
          currentStep: null,
          errorCode: outcome.errorCode ?? null,
          errorMessage: outcome.errorMessage ?? null,
          finishedAt: new Date(),
        },
      });
    },
  };
}
