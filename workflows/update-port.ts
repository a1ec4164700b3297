/**
 * updatePort — sets a port's security groups. Runbook:
 *   1. set-port-groups  one Northbound transaction moving the port between port groups   undo: move it back
 *   2. record           the port's security groups in PostgreSQL — the point of no return
 */
import { database } from "./database-activities";
import { northbound, northboundUndo } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export interface UpdatePortInput {
  operationId: string;
  portId: string;
  from: string[];
  to: string[];
}

export async function updatePort(input: UpdatePortInput): Promise<void> {
  const { portId, from, to } = input;
  const saga = new OperationSaga(input.operationId, 2);
  try {
    await saga.step(
      "set-port-groups",
      () => northbound.nbSetPortSecurityGroups({ portId, from, to }),
      () => northboundUndo.nbSetPortSecurityGroups({ portId, from: to, to: from }),
    );
    await saga.commit("record", () => database.portSecurityGroupsSet({ portId, securityGroupIds: to }));
  } catch (err) {
    await saga.fail(err, async () => undefined);
  }
}
