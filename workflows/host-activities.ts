import { ActivityCancellationType, proxyActivities, type ActivityOptions } from "@temporalio/workflow";
import type { HostActivities } from "../activities/host";
import { hostTaskQueue } from "../common/task-queues";

export interface HostCallTimeouts {
  /** A dead host fails the step after this long instead of the operation waiting forever. */
  hostScheduleToStartMs: number;
  /** Undos keep retrying a host that is away this long (QX_UNDO_DEADLINE_MS); see OperationSaga. */
  undoDeadlineMs?: number;
}

/**
 * A host worker heartbeats every activity once a second (workers/keep-alive-heartbeats.ts), so
 * silence means the worker is gone: after 5 s Temporal fails the attempt and retries it (the
 * steps' retry policies wait about a second), and a restarted or surviving worker runs the step
 * again within 10 s of the crash, not at its start-to-close timeout. Five beats missed in a row is
 * far beyond a GC pause or a busy 2-core host, so a live worker is not mistaken for a dead one.
 */
export const HOST_HEARTBEAT_TIMEOUT = "5s";

/**
 * Proxies for one host's activities, pinned to its queue. The workflow waits for a cancelled
 * activity to acknowledge (heartbeat) before running undos, so a step and its undo never overlap.
 */
export function hostActivities(hostId: string, timeouts: HostCallTimeouts, options: Partial<ActivityOptions>) {
  return proxyActivities<HostActivities>({
    taskQueue: hostTaskQueue(hostId),
    scheduleToStartTimeout: timeouts.hostScheduleToStartMs,
    heartbeatTimeout: HOST_HEARTBEAT_TIMEOUT,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    ...options,
  });
}
