/**
 * createPort — ports made through /v1/ports (one, or a batch) (bound by whatever plugs an interface with its id
 * into br-int on its host: a network namespace, an appliance). Runbook:
 *   1. validate     the port (address, MAC chosen by the API) is still CREATING
 *   2. create-port  one Northbound transaction for all: each switch port with port security, its
 *                   security groups' port groups, its DHCP options          undo: delete it
 *   3. record       port ACTIVE — the point of no return
 * On failure or cancel the switch port is deleted and the port row with it (its address is free).
 */
import { database } from "./database-activities";
import { northbound, northboundUndo } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export interface CreatePortInput {
  operationId: string;
  portIds: string[];
}

export async function createPort(input: CreatePortInput): Promise<void> {
  const { portIds } = input;
  const saga = new OperationSaga(input.operationId, 3);
  try {
    const ports = await saga.step("validate", () => database.loadPorts(portIds));
    await saga.step("create-port", () => northbound.nbCreatePorts(ports), () => northboundUndo.nbDeletePorts(portIds));
    await saga.commit("record", () => database.portsActivated({ portIds }));
  } catch (err) {
    await saga.fail(err, () => database.portsRemoved(portIds));
  }
}
