import { SingleBar } from "cli-progress";
import type { ApiClient } from "./api-client";

const FINAL = ["COMPLETED", "FAILED", "CANCELLED"];
const POLL_MS = 500;

export interface OperationView {
  id: string;
  type: string;
  state: string;
  progress: number;
  currentStep: string | null;
  error: { code: string; message: string } | null;
  links?: { temporalUi?: string };
}

/**
 * Follows an operation until it ends. On a terminal, a progress bar with the current step
 * (cli-progress); otherwise one line per step change, which reads well in logs and CI.
 */
export async function watchOperation(api: ApiClient, operationId: string, options: { quiet?: boolean } = {}): Promise<OperationView> {
  const interactive = process.stderr.isTTY && !options.quiet;
  const bar = interactive ? new SingleBar({ format: "{type} [{bar}] {percentage}% | {step}", stream: process.stderr, hideCursor: true }) : undefined;
  let lastStep: string | null | undefined;
  let op = await api.request<OperationView>("GET", `/v1/operations/${operationId}`);
  bar?.start(100, op.progress, { type: op.type, step: op.currentStep ?? op.state });
  for (;;) {
    if (bar) bar.update(op.progress, { step: op.currentStep ?? op.state });
    else if (!options.quiet && op.currentStep && op.currentStep !== lastStep) console.error(`${op.type}: ${op.currentStep} (${op.progress}%)`);
    lastStep = op.currentStep;
    if (FINAL.includes(op.state)) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    op = await api.request<OperationView>("GET", `/v1/operations/${operationId}`);
  }
  bar?.stop();
  if (!options.quiet) {
    const outcome = op.error ? `${op.state}: ${op.error.code}: ${op.error.message}` : op.state;
    console.error(`${op.type} ${op.id}: ${outcome}`);
  }
  return op;
}

export function operationSucceeded(op: OperationView): boolean {
  return op.state === "COMPLETED";
}
