import type { Client } from "@temporalio/client";
import { temporal } from "@temporalio/proto";

const { TaskQueueType } = temporal.api.enums.v1;

export interface Poller {
  /** The worker's identity: `<pid>@<hostname>` unless the worker names itself. */
  identity: string;
  lastAccessTime: Date;
}

/**
 * The workers that polled a task queue recently, as the Temporal server saw them. The server keeps
 * a poller listed for a while after its last poll, so a dead worker still shows: callers judge by
 * `lastAccessTime` (a live worker polls again within about a minute, usually at once).
 */
export async function taskQueuePollers(client: Client, queue: string, kind: "workflow" | "activity"): Promise<Poller[]> {
  const response = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: queue },
    taskQueueType: kind === "workflow" ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });
  return (response.pollers ?? []).map((p) => ({
    identity: p.identity ?? "",
    lastAccessTime: new Date(Number(p.lastAccessTime?.seconds ?? 0) * 1000 + Math.floor((p.lastAccessTime?.nanos ?? 0) / 1e6)),
  }));
}
