/**
 * releaseStoragePool — runbook (unassign a pool from a host, or delete the pool)
 *   1. teardown <host>  for each host in turn: libvirt secrets and the host's copy of the pool's
 *                       definition go; volumes are never touched
 *   ── commit ──        every host is torn down
 *   2. record           the hosts no longer reach the pool; for a delete, the pool row goes —
 *                       retried until it succeeds
 * No undo: a host that was torn down is set up again by assigning the pool again, so a failure
 * recovers forward (every step is idempotent; repeat the request). The API refuses the request
 * while volumes of the pool are in use on those hosts (delete: while the pool has any volume).
 */
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";

export interface ReleaseStoragePoolInput {
  operationId: string;
  poolId: string;
  hostIds: string[];
  deletePool: boolean;
  timeouts: HostCallTimeouts;
}

const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 5 } };

export async function releaseStoragePool(input: ReleaseStoragePoolInput): Promise<void> {
  const saga = new OperationSaga(input.operationId, input.hostIds.length + 1, input.timeouts);
  try {
    for (const hostId of input.hostIds) {
      await saga.step(`teardown ${hostId}`, () => hostActivities(hostId, input.timeouts, HOST_STEP).teardownPool(input.poolId));
    }
    await saga.commit("record", async () => {
      for (const hostId of input.hostIds) await database.poolHostRemoved({ poolId: input.poolId, hostId });
      if (input.deletePool) await database.poolDeleted(input.poolId);
    });
  } catch (err) {
    await saga.fail(err, async () => undefined);
  }
}
