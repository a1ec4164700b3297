/**
 * detachVolume — runbook
 *   1. validate   the volume is attached as a data disk (a boot disk goes with its VM)
 *   2. detach     unplugged from the running guest and removed from the domain's definition;
 *                 waits until the guest has let go
 *   ── commit ──  the guest has let go
 *   3. release    the volume is free again — retried until it succeeds
 * No undo: re-plugging a disk the user asked to remove is not a repair, so a failed detach
 * recovers forward (both steps idempotent; repeat the request).
 */
import { ApplicationFailure } from "@temporalio/workflow";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";

export interface DetachVolumeInput {
  operationId: string;
  volumeId: string;
  timeouts: HostCallTimeouts;
}

// Unplugging a SCSI disk completes at once; the activity heartbeats while it waits to be sure.
const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 5 } };

const STEPS = 3;

export async function detachVolume(input: DetachVolumeInput): Promise<void> {
  const { volumeId } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const attachment = await saga.step("validate", async () => {
      const volume = await database.loadVolume(volumeId);
      if (!volume.vmId || !volume.targetDev) {
        throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `volume ${volumeId} is not attached as a data disk` });
      }
      return { vmId: volume.vmId, targetDev: volume.targetDev, hostId: volume.vmHostId };
    });
    // A VM on no host (never placed, or failed) has no domain holding the disk.
    if (attachment.hostId) {
      const host = hostActivities(attachment.hostId, input.timeouts, HOST_STEP);
      await saga.step("detach", () => host.detachDisk({ vmId: attachment.vmId, targetDev: attachment.targetDev }));
    }
    await saga.commit("release", () => database.attachmentReleased(volumeId));
  } catch (err) {
    await saga.fail(err, async () => undefined);
  }
}
