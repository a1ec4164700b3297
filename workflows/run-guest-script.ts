/**
 * runGuestScript — runbook (POST /v1/vms/:id/agent/exec)
 *   1. validate  the VM is RUNNING on a host
 *   2. run       guest-exec of the program (or the script, with the guest's /bin/sh), its stdin
 *                given; waits up to the time limit, where the process tree is killed; heartbeats
 *                its pid, so a retry after a worker crash waits for the same process instead of
 *                starting it again. A cancel kills it.
 *   3. record    exit code, stdout and stderr (each cut to the output cap, truncation flagged) on
 *                the operation; a script killed at its time limit records its output too, then the
 *                operation fails GUEST_EXEC_TIMEOUT.
 * No undo: what a script did inside the guest is the guest's own; the only thing to take back is
 * the running process, which a failure or cancel kills.
 */
import { ApplicationFailure } from "@temporalio/workflow";
import type { GuestCommand } from "../activities/guest-agent/guest-exec";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database, expectVmState } from "./database-activities";

export interface RunGuestScriptInput {
  operationId: string;
  command: GuestCommand;
  timeouts: HostCallTimeouts;
}

/** Beyond its time limit a run gets this long to be killed and its output collected. */
const KILL_GRACE_MS = 60_000;
// The waiting activity heartbeats every poll: a silent worker is presumed dead after 30 s, and the
// retry resumes waiting for the same pid.
const RUN_HEARTBEAT = "30s";

const STEPS = 3;

export async function runGuestScript(input: RunGuestScriptInput): Promise<void> {
  const { vmId } = input.command;
  const saga = new OperationSaga(input.operationId, STEPS);
  try {
    const vm = await saga.step("validate", async () => expectVmState(await database.loadVm(vmId), ["RUNNING"]));
    if (!vm.hostId) throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `VM ${vmId} is not placed on a host` });
    const host = hostActivities(vm.hostId, input.timeouts, {
      startToCloseTimeout: input.command.timeLimitMs + KILL_GRACE_MS,
      heartbeatTimeout: RUN_HEARTBEAT,
      retry: { initialInterval: "1s", maximumAttempts: 3 },
    });
    const result = await saga.step("run", () => host.runGuestCommand(input.command));
    await saga.step("record", () => database.operationResult({ operationId: input.operationId, result }));
    if (result.timedOut) {
      throw ApplicationFailure.create({ type: "GUEST_EXEC_TIMEOUT", nonRetryable: true, message: `killed at its time limit of ${input.command.timeLimitMs} ms` });
    }
    await saga.commit();
  } catch (err) {
    await saga.fail(err, async () => undefined);
  }
}
