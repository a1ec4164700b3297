/**
 * deletePort — runbook
 *   1. delete-port  one Northbound transaction: the switch port, its port-group memberships, its DNS record
 *   2. record       the port row goes: its address and MAC are free
 * No undo: deletion recovers forward (both steps are idempotent); a failure leaves the port FAILED.
 */
import { database } from "./database-activities";
import { northbound } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export interface DeletePortInput {
  operationId: string;
  portId: string;
}

export async function deletePort(input: DeletePortInput): Promise<void> {
  const portIds = [input.portId];
  const saga = new OperationSaga(input.operationId, 2);
  try {
    await saga.step("delete-port", () => northbound.nbDeletePorts(portIds));
    await saga.commit("record", () => database.portsRemoved(portIds));
  } catch (err) {
    await saga.fail(err, () => database.portsStateChanged({ portIds, state: "FAILED" }));
  }
}
