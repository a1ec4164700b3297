/**
 * initStoragePool — runbook (a new pool on its hosts, or an existing pool assigned to one more host)
 *   1. load          the pool's definition, secrets included (they go to the hosts and nowhere else)
 *   2. init <host>   for each host in turn: the host learns the pool, sets it up (directories,
 *                    libvirt secrets, a login to the target) and reports its state
 *                                                                 undo: tear the pool down on that host
 *   ── commit ──     the pool is set up on every requested host
 *   3. record        the pool is assigned to those hosts, with the state each reported — retried
 *                    until it succeeds
 * A host that fails undoes every host of this run already done: the pool ends up on all the
 * requested hosts or on none of them. Hosts are done in turn, not in parallel, so the record of
 * which ones need undoing is simply the saga's list.
 */
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database } from "./database-activities";
import type { PoolStatus } from "../activities/storage/backend";

export interface InitStoragePoolInput {
  operationId: string;
  poolId: string;
  hostIds: string[];
  timeouts: HostCallTimeouts;
}

// Setting up a pool is a mkdir, a libvirt secret or one login: under a minute even for a Ceph
// monitor that does not answer (the backend bounds that at seconds).
const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };
const UNDO = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 } };

export async function initStoragePool(input: InitStoragePoolInput): Promise<void> {
  const saga = new OperationSaga(input.operationId, input.hostIds.length + 2, input.timeouts);
  try {
    const definition = await saga.step("load", () => database.loadPoolDefinition(input.poolId));
    const done: { hostId: string; status: PoolStatus }[] = [];
    for (const hostId of input.hostIds) {
      const status = await saga.step(
        `init ${hostId}`,
        () => hostActivities(hostId, input.timeouts, HOST_STEP).initPool(definition),
        () => hostActivities(hostId, input.timeouts, UNDO).teardownPool(input.poolId),
        { kind: "pool-setup", hostId, poolId: input.poolId },
      );
      done.push({ hostId, status });
    }
    await saga.commit("record", () => database.poolHostsInitialised({ poolId: input.poolId, hosts: done }));
  } catch (err) {
    await saga.fail(err, async () => undefined);
  }
}
