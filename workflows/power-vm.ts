/**
 * powerVm — runbook for start, stop (graceful), force-stop and reboot
 *   1. validate   the VM must be RUNNING or STOPPED (not being created or deleted)
 *   2. <action>   the one host call; a graceful stop waits until the guest is off
 *   ── commit ──  the action happened
 *   3. record     the VM's new state — retried until it succeeds
 * No undo: a power action has nothing to put back. A failed action leaves the VM in the state
 * libvirt reports (re-read in the failure path), never in a transitional one.
 */
import { ApplicationFailure } from "@temporalio/workflow";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database, expectVmState } from "./database-activities";
import type { VmPowerAction } from "../common/operations";

export interface PowerVmInput {
  operationId: string;
  vmId: string;
  action: VmPowerAction;
  timeouts: HostCallTimeouts;
  /** How long a graceful stop waits for the guest to power off. */
  stopTimeoutMs: number;
}

const HOST_STEP = { startToCloseTimeout: "1m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };

const STEPS = 3;

export async function powerVm(input: PowerVmInput): Promise<void> {
  const { vmId } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  let hostId: string | null = null;
  try {
    const vm = await saga.step("validate", async () => expectVmState(await database.loadVm(vmId), ["RUNNING", "STOPPED"]));
    hostId = vm.hostId;
    // A plain Error would fail the workflow task, not the workflow, and be retried forever.
    if (!hostId) throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `VM ${vmId} is not placed on a host` });
    const host = hostActivities(hostId, input.timeouts, HOST_STEP);
    // The guest decides how long a shutdown takes: bounded by the caller's timeout, no retries.
    const gracefulHost = hostActivities(hostId, input.timeouts, {
      startToCloseTimeout: input.stopTimeoutMs,
      retry: { maximumAttempts: 1 },
    });
    const run = {
      start: () => host.startDomain(vmId),
      stop: () => gracefulHost.shutdownDomain(vmId),
      "force-stop": () => host.forceStopDomain(vmId),
      reboot: () => host.rebootDomain(vmId),
    }[input.action];
    await saga.step(input.action, run);
    const state = input.action === "stop" || input.action === "force-stop" ? "STOPPED" : "RUNNING";
    await saga.commit("record", () => database.vmStateChanged({ vmId, state }));
  } catch (err) {
    const placedOn = hostId;
    await saga.fail(err, async () => {
      if (!placedOn) return;
      // Record what the hypervisor says rather than guess; an unreachable host leaves the state as it was.
      const observed = await hostActivities(placedOn, input.timeouts, HOST_STEP)
        .domainState(vmId)
        .catch(() => undefined);
      if (observed === "running") await database.vmStateChanged({ vmId, state: "RUNNING" });
      else if (observed === "shutoff") await database.vmStateChanged({ vmId, state: "STOPPED" });
    });
  }
}
