/**
 * withFrozenGuest — a consistent point in a guest's filesystems for the step given (a VM
 * snapshot): freeze through the agent, run the step, thaw.
 *   - The thaw runs in a non-cancellable scope whatever happens: the step fails, the workflow is
 *     cancelled, or the freeze's time runs out.
 *   - A freeze never outlives its timeout: the step is cancelled at `timeoutMs` (FREEZE_TIMEOUT)
 *     and thawed; if this workflow cannot thaw at all (the host worker died), the watchdog the
 *     freeze started inside the guest thaws at the same deadline (activities/guest-agent/freeze.ts).
 *   - A freeze that failed leaves nothing frozen (the activity thaws what it froze): no thaw here.
 */
import { ApplicationFailure, CancellationScope, isCancellation } from "@temporalio/workflow";
import { hostActivities, type HostCallTimeouts } from "./host-activities";

// Freezing waits for dirty data to be written: seconds, more on a loaded guest. Not retried: the
// watchdog of a first attempt would still be armed, and the step fails cleanly instead.
const FREEZE = { startToCloseTimeout: "2m", retry: { maximumAttempts: 1 } };
// The thaw must not give up: until it ran, the guest's writes wait (the watchdog aside).
const THAW = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 30 } };

export async function withFrozenGuest<T>(hostId: string, vmId: string, timeouts: HostCallTimeouts, timeoutMs: number, step: () => Promise<T>): Promise<T> {
  const frozen = await hostActivities(hostId, timeouts, FREEZE).freezeGuestFilesystems({ vmId, timeoutMs });
  try {
    return await CancellationScope.withTimeout(timeoutMs, step).catch((err: unknown) => {
      // Cancelled here but not from outside: our own timeout cancelled the step.
      if (isCancellation(err) && !CancellationScope.current().consideredCancelled) {
        throw ApplicationFailure.create({ type: "FREEZE_TIMEOUT", nonRetryable: true, message: `the step between freeze and thaw took over ${timeoutMs} ms` });
      }
      throw err;
    });
  } finally {
    await CancellationScope.nonCancellable(() => hostActivities(hostId, timeouts, THAW).thawGuestFilesystems({ vmId, watchdogPid: frozen.watchdogPid }));
  }
}
