/**
 * listPoolFiles — a read-only query of one pool directory on one host, run synchronously by the API
 * (GET /v1/storage/pools/:id/files). One step, no operation record and no undo: nothing changes.
 * The host confines the path to the pool (INVALID_PATH for anything that leaves it).
 */
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import type { FileEntry } from "../activities/storage/backend";

export interface ListPoolFilesInput {
  poolId: string;
  hostId: string;
  path: string;
  timeouts: HostCallTimeouts;
}

// A listing reads a directory and a few bytes of each file: seconds. The user is waiting, so a
// failure is reported rather than retried for long.
const HOST_STEP = { startToCloseTimeout: "30s", retry: { initialInterval: "500ms", maximumAttempts: 2 } };

export async function listPoolFiles(input: ListPoolFilesInput): Promise<FileEntry[]> {
  return hostActivities(input.hostId, input.timeouts, HOST_STEP).listPoolFiles({ poolId: input.poolId, path: input.path });
}
