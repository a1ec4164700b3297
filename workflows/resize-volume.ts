/**
 * resizeVolume — runbook (grow only)
 *   1. validate   READY, larger than now, base of no linked clone
 *   2. grow       through libvirt (virsh blockresize) when a running guest holds the volume, so
 *                 the guest sees the new size at once; otherwise on the pool
 *   ── commit ──  the volume is larger
 *   3. record     the new size — retried until it succeeds
 * No undo: shrinking back would destroy whatever the guest wrote past the old size, so the grow
 * is the point of no return; a failed record is retried (idempotent) and the pool is the truth.
 */
import { ApplicationFailure } from "@temporalio/workflow";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";
import { expectVolume, hostForVolume, lunAssignmentsOf } from "./volume-checks";

export interface ResizeVolumeInput {
  operationId: string;
  volumeId: string;
  sizeBytes: number;
  timeouts: HostCallTimeouts;
}

// qemu-img resize and blockresize return at once.
const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };

const STEPS = 3;

export async function resizeVolume(input: ResizeVolumeInput): Promise<void> {
  const { volumeId, sizeBytes } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const volume = await saga.step("validate", async () => {
      const loaded = expectVolume(await database.loadVolume(volumeId), { states: ["READY"], noClones: true });
      if (sizeBytes <= loaded.sizeBytes) {
        throw ApplicationFailure.create({ type: "VALIDATION_FAILED", nonRetryable: true, message: `volume ${volumeId} is ${loaded.sizeBytes} bytes; it can only grow` });
      }
      return loaded;
    });
    await saga.step("grow", async () => {
      const host = hostActivities(await hostForVolume(volume), input.timeouts, HOST_STEP);
      // A boot disk is attached too (vda), without a data disk device of its own.
      const attachedTo = volume.vmId ? { vmId: volume.vmId, targetDev: volume.targetDev ?? "vda" } : undefined;
      await host.growVolume({ poolId: volume.poolId, volumeId, sizeBytes, ...(attachedTo ? { attachedTo } : {}), ...lunAssignmentsOf(volume) });
    });
    await saga.commit("record", () => database.volumeResized({ volumeId, sizeBytes }));
  } catch (err) {
    await saga.fail(err, async () => undefined);
  }
}
