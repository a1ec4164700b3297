import { ActivityCancellationType, proxyActivities, type ActivityOptions } from "@temporalio/workflow";
import type { HostActivities } from "../activities/host";
import { hostTaskQueue } from "../common/task-queues";

export interface HostCallTimeouts {
  /** A dead host fails the step after this long instead of the operation waiting forever. */
  hostScheduleToStartMs: number;
}

/**
 * Proxies for one host's activities, pinned to its queue. The workflow waits for a cancelled
 * activity to acknowledge (heartbeat) before running undos, so a step and its undo never overlap.
 */
export function hostActivities(hostId: string, timeouts: HostCallTimeouts, options: Partial<ActivityOptions>) {
  return proxyActivities<HostActivities>({
    taskQueue: hostTaskQueue(hostId),
    scheduleToStartTimeout: timeouts.hostScheduleToStartMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    ...options,
  });
}
