import { ApplicationFailure, proxyLocalActivities } from "@temporalio/workflow";
import type { DatabaseActivities } from "../activities/database";
import type { VmSpec } from "../activities/database/vms";

/**
 * Control-plane database steps, as local activities of the control-plane worker. Placement
 * failures (no host) are non-retryable; other errors (a dropped connection) are retried.
 */
export const database = proxyLocalActivities<DatabaseActivities>({
  startToCloseTimeout: "30s",
  retry: { initialInterval: "200ms", maximumInterval: "5s", maximumAttempts: 10 },
});

/** Fails the step unless the VM is in one of `states` (a stale request must not act). */
export function expectVmState(vm: VmSpec, states: VmSpec["state"][]): VmSpec {
  if (!states.includes(vm.state)) {
    throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `VM ${vm.id} is ${vm.state}, expected ${states.join(" or ")}` });
  }
  return vm;
}
