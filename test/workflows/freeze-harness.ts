/**
 * A test workflow around the product's withFrozenGuest (workflows/guest-freeze.ts), standing in for
 * the VM snapshot workflow that will use it: the step between freeze and thaw is a test activity
 * (on the test's own queue) that observes, fails or hangs.
 */
import { proxyActivities } from "@temporalio/workflow";
import { withFrozenGuest } from "../../workflows/guest-freeze";

export interface FreezeHarnessActivities {
  observeFrozen(vmId: string): Promise<string>;
  failBetween(): Promise<never>;
  hangBetween(): Promise<never>;
}

export interface FreezeHarnessInput {
  hostId: string;
  vmId: string;
  timeoutMs: number;
  between: "observe" | "fail" | "hang";
  testQueue: string;
}

export async function freezeHarness(input: FreezeHarnessInput): Promise<string> {
  const test = proxyActivities<FreezeHarnessActivities>({ taskQueue: input.testQueue, startToCloseTimeout: "5m", heartbeatTimeout: "5s", retry: { maximumAttempts: 1 } });
  return withFrozenGuest(input.hostId, input.vmId, { hostScheduleToStartMs: 30_000 }, input.timeoutMs, () => {
    if (input.between === "observe") return test.observeFrozen(input.vmId);
    if (input.between === "fail") return test.failBetween();
    return test.hangBetween();
  });
}
