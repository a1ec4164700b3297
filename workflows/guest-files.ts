/**
 * guestFiles — one file request through a VM's guest agent, run synchronously by the API
 * (GET/PUT/DELETE /v1/vms/:id/agent/files...). One host step, no operation record and no undo:
 * a listing, a stat or a chunk read changes nothing, and a write goes to a partial file that the
 * API renames into place only when all of it arrived. Paths are the guest's (never the host's).
 */
import type { GuestFileRequest } from "../activities/guest-agent/guest-files";
import { hostActivities, type HostCallTimeouts } from "./host-activities";

export interface GuestFilesInput {
  hostId: string;
  vmId: string;
  request: GuestFileRequest;
  timeouts: HostCallTimeouts;
}

// The user is waiting: a failure is reported rather than retried for long.
const HOST_STEP = { startToCloseTimeout: "1m", retry: { initialInterval: "500ms", maximumAttempts: 2 } };

export async function guestFiles(input: GuestFilesInput): Promise<unknown> {
  return hostActivities(input.hostId, input.timeouts, HOST_STEP).guestFileRequest({ vmId: input.vmId, request: input.request });
}
