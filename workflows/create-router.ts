/**
 * createRouter — runbook
 *   1. validate      the router is CREATING; its legs as the API recorded them (the gateway leg on
 *                    an external network, its address chosen by the API) and gateway chassis (hosts
 *                    whose healthy chassis bridge to that provider network)
 *   2. write-router  one Northbound transaction: the logical router, the gateway port bound to the
 *                    gateway chassis, the default route, the switch-side patch port  undo: delete it
 *   3. record        router ACTIVE — the point of no return
 * On failure or cancel the router is deleted from OVN and ends FAILED, holding no address.
 */
import { database } from "./database-activities";
import { expectNetState } from "./network-checks";
import { northbound, northboundUndo } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export interface RouterInput {
  operationId: string;
  routerId: string;
}

export async function createRouter(input: RouterInput): Promise<void> {
  const { routerId } = input;
  const saga = new OperationSaga(input.operationId, 3);
  try {
    const { after } = await saga.step("validate", async () => expectNetState("router", routerId, await database.loadRouterChange(routerId), ["CREATING"]));
    await saga.step("write-router", () => northbound.nbSyncRouters({ routers: [after], removed: [] }), () => northboundUndo.nbDeleteRouter(routerId));
    await saga.commit("record", () => database.routerCommitted(routerId));
  } catch (err) {
    await saga.fail(err, (failure) => database.routerRolledBack({ routerId, errorCode: failure.code, errorMessage: failure.message }));
  }
}
