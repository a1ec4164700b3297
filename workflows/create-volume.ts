/**
 * createVolume — runbook
 *   1. validate     the volume row must still be CREATING
 *   2. choose-host  a host with a fresh, healthy report on the pool; for a host-local pool it
 *                   becomes the volume's host
 *   3. create       the empty volume on the pool (iSCSI: the LUN the API assigned it)
 *                                                                              undo: delete it (a LUN is zeroed)
 *   ── commit ──    the volume exists: no undo runs after this
 *   4. record       volume READY with the size the pool reports — retried until it succeeds
 * On any failure or cancel the undos run in reverse and the volume row is removed: a volume that
 * was never made does not exist (the operation keeps the reason). If the delete undo fails (until
 * the undo deadline), the row stays in ERROR with its host and LUN and `cleanup`: the LUN is never
 * handed out again before its wipe finished, and a repeated DELETE finishes the job.
 */
import { cleanupAfterUndos } from "../common/cleanup";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";
import { expectVolume, lunAssignmentsOf } from "./volume-checks";

export interface CreateVolumeInput {
  operationId: string;
  volumeId: string;
  timeouts: HostCallTimeouts;
}

// Creating an empty qcow2 or RBD image takes well under a second; two minutes covers a loaded host.
const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };
// Undos must not give up quickly: they are what keeps the pool clean.
const UNDO = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 } };

const STEPS = 4;

export async function createVolume(input: CreateVolumeInput): Promise<void> {
  const { volumeId } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const volume = await saga.step("validate", async () => expectVolume(await database.loadVolume(volumeId), { states: ["CREATING"] }));
    const hostId = await saga.step("choose-host", async () => {
      const chosen = await database.pickPoolHost({ poolId: volume.poolId, preferred: volume.hostId });
      await database.volumeHostChosen({ volumeId, hostId: chosen });
      return chosen;
    });
    const host = hostActivities(hostId, input.timeouts, HOST_STEP);
    const hostUndo = hostActivities(hostId, input.timeouts, UNDO);
    const ref = { poolId: volume.poolId, volumeId, ...lunAssignmentsOf(volume) };
    const created = await saga.step(
      "create",
      () => host.createVolume({ ...ref, sizeBytes: volume.sizeBytes, source: { kind: "empty" } }),
      () => hostUndo.deleteVolume(ref),
      { kind: "volume", hostId, poolId: volume.poolId, volumeId, ...(volume.lun !== null ? { lun: volume.lun } : {}) },
    );
    await saga.commit("record", () => database.volumeReady({ volumeId, sizeBytes: created.sizeBytes, format: created.format }));
  } catch (err) {
    await saga.fail(err, (_failure, undoFailures) => database.volumeCreateFailed({ volumeId, cleanup: cleanupAfterUndos(input.operationId, undoFailures) }));
  }
}
