/** Every workflow and control-plane activity (database, placement) runs here. */
export const DEFAULT_CONTROL_PLANE_QUEUE = "control-plane";

/** A hypervisor host's own queue: only that host's worker polls it, so work lands on that host. */
export function hostTaskQueue(hostId: string): string {
  return `host.${hostId}`;
}

/**
 * A host's image download queue, served by a second worker on that host whose concurrency limit
 * (QX_MAX_CONCURRENT_DOWNLOADS) caps the downloads running there, apart from the quick host calls.
 */
export function hostDownloadQueue(hostId: string): string {
  return `host.${hostId}.downloads`;
}
