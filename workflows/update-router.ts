/**
 * updateRouter — an interface added to or removed from a router (the API recorded the leg as
 * CREATING or DELETING). Runbook:
 *   1. validate      the router is ACTIVE; its legs before and after the change
 *   2. write-router  one Northbound transaction (compare-and-swap on the router): its ports, patch
 *                    ports and SNAT rules as after the change          undo: write them as before
 *   3. record        new legs ACTIVE, removed ones gone — the point of no return
 */
import { database } from "./database-activities";
import { expectNetState } from "./network-checks";
import { northbound, northboundUndo } from "./network-activities";
import { OperationSaga } from "./operation-saga";
import type { RouterInput } from "./create-router";

export async function updateRouter(input: RouterInput): Promise<void> {
  const { routerId } = input;
  const saga = new OperationSaga(input.operationId, 3);
  try {
    const { before, after } = await saga.step("validate", async () => expectNetState("router", routerId, await database.loadRouterChange(routerId), ["ACTIVE"]));
    await saga.step("write-router", () => northbound.nbSyncRouters({ routers: [after], removed: [] }), () => northboundUndo.nbSyncRouters({ routers: [before], removed: [] }));
    await saga.commit("record", () => database.routerCommitted(routerId));
  } catch (err) {
    await saga.fail(err, (failure) => database.routerRolledBack({ routerId, errorCode: failure.code, errorMessage: failure.message }));
  }
}
