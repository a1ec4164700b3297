/**
 * cloneVolume — runbook
 *   1. validate     the source is READY and attached to no VM (a running guest's qcow2 cannot be
 *                   copied consistently, and a linked clone's base must never be written again);
 *                   the new volume's row is CREATING
 *   2. choose-host  the source's host (host-local pool) or any host with the pool healthy
 *   3. clone        linked: a copy-on-write child of the source (instant, whatever its size)
 *                   full:   an independent copy; heartbeats bytes copied, a cancel kills it, and
 *                           the pool never shows a partial copy                 undo: delete the new volume
 *   ── commit ──    the copy exists: no undo runs after this
 *   4. record       the new volume READY — retried until it succeeds
 * On failure or cancel the new volume is removed from the pool and from the database; if that
 * removal fails, the new volume's row stays in ERROR with `cleanup` (host, LUN kept) for DELETE.
 */
import { cleanupAfterUndos } from "../common/cleanup";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";
import { expectVolume, hostForVolume, lunAssignmentsOf } from "./volume-checks";

export type CloneMode = "linked" | "full";

export interface CloneVolumeInput {
  operationId: string;
  sourceVolumeId: string;
  /** The new volume, recorded CREATING by the API with its id. */
  volumeId: string;
  mode: CloneMode;
  timeouts: HostCallTimeouts;
}

// A linked clone writes one qcow2 header or RBD clone: seconds at most.
const LINKED_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };
// A full copy of a large volume takes hours; progress heartbeats prove it alive, so a dead host
// fails the step at the host heartbeat timeout rather than at the end. A retry starts the copy over.
const COPY_STEP = { startToCloseTimeout: "24h", retry: { initialInterval: "5s", maximumAttempts: 3 } };
const UNDO = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 } };

const STEPS = 4;

export async function cloneVolume(input: CloneVolumeInput): Promise<void> {
  const { volumeId, sourceVolumeId } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const { source, luns, lun } = await saga.step("validate", async () => {
      const created = expectVolume(await database.loadVolume(volumeId), { states: ["CREATING"] });
      const loaded = expectVolume(await database.loadVolume(sourceVolumeId), { states: ["READY"], detached: true });
      return { source: loaded, luns: lunAssignmentsOf(loaded, created), lun: created.lun };
    });
    const hostId = await saga.step("choose-host", async () => {
      const chosen = await hostForVolume(source);
      await database.volumeHostChosen({ volumeId, hostId: chosen });
      return chosen;
    });
    const hostUndo = hostActivities(hostId, input.timeouts, UNDO);
    const target = { poolId: source.poolId, volumeId, ...luns };
    const created = await saga.step(
      "clone",
      () =>
        input.mode === "linked"
          ? hostActivities(hostId, input.timeouts, LINKED_STEP).createVolume({
              ...target,
              sizeBytes: source.sizeBytes,
              source: { kind: "clone", volumeId: sourceVolumeId },
            })
          : hostActivities(hostId, input.timeouts, COPY_STEP).copyVolume({ poolId: source.poolId, sourceVolumeId, targetVolumeId: volumeId, ...luns }),
      () => hostUndo.deleteVolume(target),
      { kind: "volume", hostId, poolId: source.poolId, volumeId, ...(lun !== null ? { lun } : {}) },
    );
    await saga.commit("record", () => database.volumeReady({ volumeId, sizeBytes: created.sizeBytes, format: created.format }));
  } catch (err) {
    await saga.fail(err, (_failure, undoFailures) => database.volumeCreateFailed({ volumeId, cleanup: cleanupAfterUndos(input.operationId, undoFailures) }));
  }
}
