/**
 * createNetwork — runbook
 *   1. validate       the network row (written by the API with its addresses) is still CREATING
 *   2. create-switch  one Northbound transaction: the logical switch, its DNS table, its DHCP
 *                     options (when DHCP is on) and, for vlan and external networks, the localnet
 *                     port onto the provider network                          undo: delete them
 *   3. record         network ACTIVE — the point of no return
 * On failure or cancel the switch is deleted and the network ends FAILED (DELETE removes it).
 */
import { database } from "./database-activities";
import { expectNetState } from "./network-checks";
import { northbound, northboundUndo } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export interface CreateNetworkInput {
  operationId: string;
  networkId: string;
}

export async function createNetwork(input: CreateNetworkInput): Promise<void> {
  const { networkId } = input;
  const saga = new OperationSaga(input.operationId, 3);
  try {
    const network = await saga.step("validate", async () => expectNetState("network", networkId, await database.loadNetwork(networkId), ["CREATING"]));
    await saga.step("create-switch", () => northbound.nbCreateNetwork(network), () => northboundUndo.nbDeleteNetwork(networkId));
    await saga.commit("record", () => database.networkCreated(networkId));
  } catch (err) {
    await saga.fail(err, (failure) => database.networkStateChanged({ networkId, state: "FAILED", errorCode: failure.code, errorMessage: failure.message }));
  }
}
