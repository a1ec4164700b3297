/**
 * deleteRouter — runbook (the API found no interface and no floating IP on it)
 *   1. delete-router  one Northbound transaction: the logical router and its gateway's patch port
 *   2. record         the router and its gateway leg's address go
 * No undo: deletion recovers forward; a failure leaves the router FAILED and a repeated DELETE finishes.
 */
import { database } from "./database-activities";
import { northbound } from "./network-activities";
import { OperationSaga } from "./operation-saga";
import type { RouterInput } from "./create-router";

export async function deleteRouter(input: RouterInput): Promise<void> {
  const { routerId } = input;
  const saga = new OperationSaga(input.operationId, 2);
  try {
    await saga.step("delete-router", () => northbound.nbDeleteRouter(routerId));
    await saga.commit("record", () => database.routerDeleted(routerId));
  } catch (err) {
    await saga.fail(err, (failure) => database.routerStateChanged({ routerId, state: "FAILED", errorCode: failure.code, errorMessage: failure.message }));
  }
}
