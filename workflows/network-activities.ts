import { proxyLocalActivities } from "@temporalio/workflow";
import type { NetworkActivities } from "../activities/ovn/nb-activities";

/**
 * OVN Northbound writes, as local activities of the control-plane worker (it holds the one
 * connection to the Northbound database). Each is one transaction, so a retry either finds its
 * own committed work or applies whole; OVN_UNAVAILABLE (no connection) is retried for about a
 * minute, a refused transaction (OVN_ERROR) is not.
 */
export const northbound = proxyLocalActivities<NetworkActivities>({
  startToCloseTimeout: "30s",
  retry: { initialInterval: "200ms", maximumInterval: "5s", maximumAttempts: 15, nonRetryableErrorTypes: ["OVN_ERROR"] },
});

/** Undos keep trying longer: they are what leaves the Northbound database clean. */
export const northboundUndo = proxyLocalActivities<NetworkActivities>({
  startToCloseTimeout: "30s",
  retry: { initialInterval: "500ms", maximumInterval: "10s", maximumAttempts: 30 },
});
