/**
 * upgradeAgents — runbook of a fleet agent upgrade (POST /v1/agent-upgrades)
 *   1. load-targets  the run's VMs, in the order the API chose (by name)
 *   2. upgrade-vms   one upgradeAgent child workflow per VM, at most maxParallel at once. A VM's
 *                    turn: skipped when its agent is not connected, failed when another operation
 *                    holds it; otherwise it gets its own upgrade-agent operation (and so the VM's
 *                    lock) and child. Once failures exceed maxFailures no new child starts; those
 *                    running finish, the rest are NOT_STARTED. Any failure fails the run
 *                    (AGENT_UPGRADES_FAILED); each VM's outcome is on its target row.
 * No undo at this level: each child rolls its own VM back when its upgrade fails, and a cancel of
 * the run cancels the running children, which roll back.
 */
import { CancellationScope, ApplicationFailure, ChildWorkflowFailure, executeChild, isCancellation, uuid4 } from "@temporalio/workflow";
import type { AgentUpgradeTargetRef } from "../activities/database/agent-upgrades";
import { operationWorkflowId } from "../common/operations";
import { OPERATION_ID, OPERATION_TYPE, VM_ID } from "../common/search-attributes";
import { OperationSaga } from "./operation-saga";
import { database } from "./database-activities";
import { summariseFailure } from "./failures";
import type { UpgradeAgentInput, UpgradeAgentResult } from "./upgrade-agent";

export interface UpgradeAgentsInput {
  operationId: string;
  runId: string;
  version: string;
  allowDowngrade: boolean;
  maxParallel: number;
  maxFailures: number;
  requestedBy: string;
  timeouts: UpgradeAgentInput["timeouts"];
}

const STEPS = 2;

export async function upgradeAgents(input: UpgradeAgentsInput): Promise<void> {
  const saga = new OperationSaga(input.operationId, STEPS);
  try {
    const targets = await saga.step("load-targets", () => database.loadAgentUpgradeTargets(input.runId));
    const failed = await saga.step("upgrade-vms", () => upgradeAll(input, targets));
    if (failed > 0) {
      throw ApplicationFailure.create({ type: "AGENT_UPGRADES_FAILED", nonRetryable: true, message: `${failed} of ${targets.length} VMs failed (maxFailures ${input.maxFailures}); see each VM's result` });
    }
    await saga.commit();
  } catch (err) {
    await saga.fail(err, () => database.agentUpgradeStopped(input.runId));
  }
}

/** Runs the children, at most maxParallel at once; returns how many failed. */
async function upgradeAll(input: UpgradeAgentsInput, targets: AgentUpgradeTargetRef[]): Promise<number> {
  const queue = [...targets];
  const running = new Set<Promise<void>>();
  let failures = 0;
  while (queue.length > 0 && failures <= input.maxFailures) {
    if (running.size >= input.maxParallel) {
      await Promise.race(running);
      continue;
    }
    const target = queue.shift()!;
    const turn: Promise<void> = upgradeOne(input, target).then((outcome) => {
      if (outcome === "failed") failures += 1;
      running.delete(turn);
    });
    running.add(turn);
  }
  await Promise.all(running);
  await database.agentUpgradeStopped(input.runId);
  return failures;
}

async function upgradeOne(input: UpgradeAgentsInput, target: AgentUpgradeTargetRef): Promise<"done" | "failed" | "skipped"> {
  const operationId = uuid4();
  const workflowId = operationWorkflowId("upgrade-agent", target.vmId, operationId);
  const request = { version: input.version, allowDowngrade: input.allowDowngrade, fleetUpgrade: input.runId };
  const begun = await database.beginAgentUpgradeTarget({ ...target, operationId, workflowId, requestedBy: input.requestedBy, request });
  if (!begun.started) return begun.outcome;
  try {
    const result: UpgradeAgentResult = await executeChild("upgradeAgent", {
      workflowId,
      args: [{ operationId, vmId: target.vmId, version: input.version, allowDowngrade: input.allowDowngrade, timeouts: input.timeouts } satisfies UpgradeAgentInput],
      typedSearchAttributes: [
        { key: VM_ID, value: target.vmId },
        { key: OPERATION_TYPE, value: "upgrade-agent" },
        { key: OPERATION_ID, value: operationId },
      ],
      staticSummary: `Upgrade the guest agent of VM ${target.vmName} to ${input.version} (fleet upgrade ${input.runId})`,
    });
    await database.agentUpgradeTargetFinished({ ...target, outcome: "DONE", fromVersion: result.from, toVersion: result.to });
    return "done";
  } catch (err) {
    const failure = summariseFailure(err instanceof ChildWorkflowFailure ? err.cause : err);
    // Recorded even when the run is being cancelled: the row must not stay RUNNING.
    await CancellationScope.nonCancellable(() =>
      database.agentUpgradeTargetFinished({ ...target, outcome: "FAILED", errorCode: failure.code, errorMessage: failure.message }),
    );
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) throw err;
    return "failed";
  }
}
