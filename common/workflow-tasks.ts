/**
 * How fast the control plane recovers from a dead control-plane worker.
 *
 * A workflow task that a worker took and never completed (the worker died) is handed to another
 * worker only at the task's timeout; the operation record writes are local activities that run
 * inside that task, so a write in flight when the worker dies is re-run only then too. Temporal's
 * default is 10 s. Our workflow tasks replay a short history and do no I/O besides those writes
 * (milliseconds each), so 2 s is still 20× and more what a task takes on a loaded 2-core host; a
 * task that exceeds it is only retried, never lost. Set on every workflow the control plane starts.
 */
export const WORKFLOW_TASK_TIMEOUT = "2s";

/**
 * A worker caches the workflows it ran and asks for their next tasks on its own sticky queue;
 * a task waiting there for a dead worker goes back to the shared queue after this long (Temporal's
 * default: 10 s). A live worker polls its sticky queue continuously, so 1 s costs at most a replay
 * of a short history when it was busy.
 */
export const STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT = "1s";
