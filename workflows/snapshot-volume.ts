/**
 * snapshotVolume — runbook for create, delete and revert of one snapshot
 *   1. validate   the volume is READY and attached to no VM (qemu holds a running guest's image
 *                 locked, and reverting under a guest would corrupt it); revert: base of no linked clone
 *   2. <action>   create   the snapshot on the pool                       undo: delete it
 *                 delete   remove it from the pool
 *                 revert   the volume's data becomes the snapshot's again (what was written since is lost)
 *   ── commit ──  the pool holds the result
 *   3. record     the snapshot row (create), its removal (delete); revert changes no row —
 *                 retried until it succeeds
 * Delete and revert have no undo: neither can be taken back, so they recover forward (idempotent).
 * A create whose undo failed records the snapshot anyway: what is on the pool is visible, and
 * DELETE of the snapshot removes it.
 */
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";
import { expectVolume, hostForVolume } from "./volume-checks";

export type SnapshotAction = "create" | "delete" | "revert";

export interface SnapshotVolumeInput {
  operationId: string;
  volumeId: string;
  action: SnapshotAction;
  name: string;
  /** The snapshot row's id, chosen by the API for a create. */
  snapshotId: string;
  timeouts: HostCallTimeouts;
}

// Internal qcow2 and RBD snapshots are metadata operations: seconds.
const HOST_STEP = { startToCloseTimeout: "5m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };
const UNDO = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 } };

const STEPS = 3;

export async function snapshotVolume(input: SnapshotVolumeInput): Promise<void> {
  const { volumeId, name } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const { volume, hostId } = await saga.step("validate", async () => {
      const loaded = expectVolume(await database.loadVolume(volumeId), { states: ["READY"], detached: true, noClones: input.action === "revert" });
      return { volume: loaded, hostId: await hostForVolume(loaded) };
    });
    const host = hostActivities(hostId, input.timeouts, HOST_STEP);
    const snapshot = { poolId: volume.poolId, volumeId, name };
    switch (input.action) {
      case "create":
        await saga.step("create", () => host.createSnapshot(snapshot), () => hostActivities(hostId, input.timeouts, UNDO).deleteSnapshot(snapshot));
        await saga.commit("record", () => database.snapshotRecorded({ volumeId, name, snapshotId: input.snapshotId }));
        break;
      case "delete":
        await saga.step("delete", () => host.deleteSnapshot(snapshot));
        await saga.commit("record", () => database.snapshotRemoved({ volumeId, name }));
        break;
      case "revert":
        await saga.step("revert", () => host.revertSnapshot(snapshot));
        await saga.commit();
        break;
    }
  } catch (err) {
    await saga.fail(err, async (_failure, undoFailures) => {
      if (input.action === "create" && undoFailures.length > 0) await database.snapshotRecorded({ volumeId, name, snapshotId: input.snapshotId });
    });
  }
}
