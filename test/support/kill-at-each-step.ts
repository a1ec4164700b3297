import type { PrismaClient } from "@prisma/client";
import type { Client } from "@temporalio/client";
import type { RealProcess } from "./processes";

/**
 * Kill-at-every-step helpers for any workflow (used with process-system.ts):
 *   recordedSteps(op)                 the steps a successful run recorded, in order: the sweep's list,
 *                                     derived from the workflow, never written by hand
 *   stepsOnQueue(temporal, op, queue) which of them ran an activity on a queue (from the run's history)
 *   killDuringStep(...)               SIGKILLs a process while the operation is at a step, restarts it
 *   nextTransitionAfter(op, t)        the first step start/end (or the end) the operation recorded after t
 * Times come from the operation's own step timeline, as a user reads it.
 */

export interface RecordedStep {
  name: string;
  kind: "STEP" | "UNDO";
  state: string;
  startedAt: string;
  finishedAt: string | null;
}

export interface RecordedOperation {
  id: string;
  workflowId: string;
  state: string;
  finishedAt: string | null;
  steps: RecordedStep[];
}

export function recordedSteps(op: RecordedOperation): string[] {
  return op.steps.filter((s) => s.kind === "STEP").map((s) => s.name);
}

/** The steps of a finished run during which the workflow scheduled an activity on `queue`. */
export async function stepsOnQueue(temporal: Client, op: RecordedOperation, queue: string): Promise<Set<string>> {
  const history = await temporal.workflow.getHandle(op.workflowId).fetchHistory();
  const scheduledAt: number[] = [];
  for (const event of history.events ?? []) {
    if (event.activityTaskScheduledEventAttributes?.taskQueue?.name !== queue || !event.eventTime) continue;
    scheduledAt.push(Number(event.eventTime.seconds) * 1000 + Math.floor((event.eventTime.nanos ?? 0) / 1e6));
  }
  const steps = op.steps.filter((s) => s.kind === "STEP");
  // The step's start is written before its activity is scheduled and its end after it completes.
  return new Set(
    steps.filter((s) => scheduledAt.some((t) => t >= Date.parse(s.startedAt) && t <= Date.parse(s.finishedAt ?? op.finishedAt ?? "")))
      .map((s) => s.name),
  );
}

export interface Kill {
  step: string;
  /** When the process was stopped (SIGSTOP, then SIGKILL), and when its successor was ready. */
  killedAt: number;
  readyAt: number;
  /** An activity attempt of this step had been handed to the killed process (it died holding it). */
  lostAttempt: boolean;
}

export class StepMissed extends Error {}

interface KillContext {
  prisma: PrismaClient;
  temporal: Client;
}

/**
 * Waits until the operation's current step is `step`, freezes the process at once (SIGSTOP, so it
 * can neither finish the step nor let go of it), then SIGKILLs and restarts it. With
 * `holdsActivity`, it first waits for the step's activity attempt to be handed to the frozen
 * process — the case where Temporal must notice the death — and throws StepMissed if the step
 * finished before the freeze.
 */
export async function killDuringStep(
  ctx: KillContext,
  operationId: string,
  step: string,
  target: RealProcess,
  options: { holdsActivity?: boolean; restart?: boolean } = {},
): Promise<Kill> {
  await waitForCurrentStep(ctx.prisma, operationId, step);
  target.freeze();
  const killedAt = Date.now();
  let lostAttempt = false;
  if (options.holdsActivity) {
    const op = await ctx.prisma.operation.findUniqueOrThrow({ where: { id: operationId } });
    const deadline = Date.now() + 5_000;
    while (!lostAttempt && Date.now() < deadline) {
      const { raw } = await ctx.temporal.workflow.getHandle(op.workflowId).describe();
      lostAttempt = (raw.pendingActivities ?? []).some((a) => a.lastWorkerIdentity?.startsWith(`${target.pid}@`) && a.lastStartedTime);
      const now = await ctx.prisma.operation.findUniqueOrThrow({ where: { id: operationId } });
      if (!lostAttempt && now.currentStep !== step) break;
      if (!lostAttempt) await new Promise((r) => setTimeout(r, 25));
    }
  }
  await target.kill("SIGKILL");
  if (options.holdsActivity && !lostAttempt) {
    if (options.restart !== false) await target.start();
    throw new StepMissed(`${step} finished before ${target.options.name} was frozen`);
  }
  if (options.restart !== false) await target.start();
  return { step, killedAt, readyAt: target.readyAt, lostAttempt };
}

async function waitForCurrentStep(prisma: PrismaClient, operationId: string, step: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const op = await prisma.operation.findUnique({ where: { id: operationId }, select: { currentStep: true, state: true } });
    if (op?.currentStep === step) return;
    if (op && ["COMPLETED", "FAILED", "CANCELLED"].includes(op.state)) throw new StepMissed(`operation ${operationId} ended ${op.state} before step ${step}`);
    if (Date.now() > deadline) throw new Error(`operation ${operationId} never reached step ${step}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * The first step start or end the operation recorded after `t`, or its end: "the next step". An
 * operation that had already ended at `t` (a kill during its last write) recovered at once: `t`.
 */
export function nextTransitionAfter(op: RecordedOperation, t: number): number {
  const times = op.steps.flatMap((s) => [s.startedAt, s.finishedAt]).concat(op.finishedAt);
  const after = times.filter((x): x is string => x !== null).map((x) => Date.parse(x)).filter((x) => x >= t);
  if (after.length === 0 && op.finishedAt && Date.parse(op.finishedAt) < t) return t;
  if (after.length === 0) throw new Error(`operation ${op.id} recorded nothing after ${new Date(t).toISOString()}`);
  return Math.min(...after);
}

/** Milliseconds, for the report: "min–max (n runs)". */
export function range(values: number[]): string {
  return values.length ? `${Math.min(...values)}–${Math.max(...values)} ms (${values.length})` : "none";
}
