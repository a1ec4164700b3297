/**
 * deleteVolume — runbook
 *   1. validate   READY or FAILED, attached to no VM, base of no linked clone; marked DELETING
 *   2. delete     remove it (and its snapshots) from the pool
 *   3. record     remove the volume's row
 * No step has an undo: a half-deleted volume cannot be put back, so deletion recovers forward.
 * Every step is idempotent; if one fails the volume is FAILED and a repeated DELETE finishes.
 */
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";
import { expectVolume, hostForVolume, lunAssignmentsOf } from "./volume-checks";

export interface DeleteVolumeInput {
  operationId: string;
  volumeId: string;
  timeouts: HostCallTimeouts;
}

// Removing a file or an RBD image with its snapshots: seconds; retried, since it is idempotent.
const HOST_STEP = { startToCloseTimeout: "5m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 5 } };

const STEPS = 3;

export async function deleteVolume(input: DeleteVolumeInput): Promise<void> {
  const { volumeId } = input;
  const saga = new OperationSaga(input.operationId, STEPS);
  try {
    const volume = await saga.step("validate", async () => {
      const loaded = expectVolume(await database.loadVolume(volumeId), { states: ["READY", "FAILED", "DELETING"], detached: true, noClones: true });
      await database.volumeStateChanged({ volumeId, state: "DELETING" });
      return loaded;
    });
    await saga.step("delete", async () => {
      const host = hostActivities(await hostForVolume(volume), input.timeouts, HOST_STEP);
      await host.deleteVolume({ poolId: volume.poolId, volumeId, ...lunAssignmentsOf(volume) });
    });
    await saga.step("record", () => database.volumeDeleted(volumeId));
    await saga.succeed();
  } catch (err) {
    await saga.fail(err, () => database.volumeStateChanged({ volumeId, state: "FAILED" }));
  }
}
