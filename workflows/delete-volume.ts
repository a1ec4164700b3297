/**
 * deleteVolume — runbook
 *   1. validate   READY, FAILED or ERROR, attached to no VM, base of no linked clone; marked DELETING
 *                 in the same transaction, under the volume's row lock. A refusal changes nothing.
 *   2. delete     remove it (and its snapshots) from the pool; an iSCSI LUN is zeroed first
 *   ── commit ──  nothing is left on the pool
 *   3. record     remove the volume's row (which frees its LUN) — retried until it succeeds
 * No step has an undo: a half-deleted volume cannot be put back, so deletion recovers forward.
 * Every step is idempotent; if one fails the volume goes to ERROR with `cleanup` (host, LUN kept:
 * a LUN whose wipe did not finish is never handed out) and a repeated DELETE finishes. This is also
 * how a volume left in ERROR by a failed create is finished.
 */
import { failedForwardStep } from "../common/cleanup";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";
import { hostForVolume, lunAssignmentsOf } from "./volume-checks";

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
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const volume = await saga.step("validate", () => database.volumeDeleting(volumeId));
    await saga.step("delete", async () => {
      const host = hostActivities(await hostForVolume(volume), input.timeouts, HOST_STEP);
      await host.deleteVolume({ poolId: volume.poolId, volumeId, ...lunAssignmentsOf(volume) });
    });
    await saga.commit("record", () => database.volumeDeleted(volumeId));
  } catch (err) {
    await saga.fail(err, (failure) => database.volumeDeleteFailed({ volumeId, failed: failedForwardStep(input.operationId, failure) }));
  }
}
