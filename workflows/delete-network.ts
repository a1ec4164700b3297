/**
 * deleteNetwork — runbook
 *   1. validate       the network is DELETING (the API marked it, having found no port on it)
 *   2. delete-switch  one Northbound transaction: switch, localnet port, DHCP options, DNS table
 *   3. record         the network row goes
 * No undo: deletion recovers forward. Each step is idempotent; a failure leaves the network FAILED
 * with the reason and a repeated DELETE finishes it.
 */
import { database } from "./database-activities";
import { expectNetState } from "./network-checks";
import { northbound } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export interface DeleteNetworkInput {
  operationId: string;
  networkId: string;
}

export async function deleteNetwork(input: DeleteNetworkInput): Promise<void> {
  const { networkId } = input;
  const saga = new OperationSaga(input.operationId, 3);
  try {
    await saga.step("validate", async () => expectNetState("network", networkId, await database.loadNetwork(networkId), ["DELETING"]));
    await saga.step("delete-switch", () => northbound.nbDeleteNetwork(networkId));
    await saga.commit("record", () => database.networkDeleted(networkId));
  } catch (err) {
    await saga.fail(err, (failure) =>
      database.networkStateChanged({ networkId, state: "FAILED", errorCode: failure.code, errorMessage: `delete did not finish: ${failure.message}` }),
    );
  }
}
