/**
 * deleteSecurityGroup — runbook
 *   1. delete-port-group  its port group, and with it its ACLs (the API found no port in it and no
 *                         rule of another group naming it)
 *   2. record             the group's rows go
 * No undo: deletion recovers forward; a failure leaves the group FAILED and a repeated DELETE finishes.
 */
import { database } from "./database-activities";
import { northbound } from "./network-activities";
import { OperationSaga } from "./operation-saga";
import type { SecurityGroupInput } from "./create-security-group";

export async function deleteSecurityGroup(input: SecurityGroupInput): Promise<void> {
  const { groupId } = input;
  const saga = new OperationSaga(input.operationId, 2);
  try {
    await saga.step("delete-port-group", () => northbound.nbDeleteSecurityGroup(groupId));
    await saga.commit("record", () => database.securityGroupDeleted(groupId));
  } catch (err) {
    await saga.fail(err, () => database.securityGroupStateChanged({ groupId, state: "FAILED" }));
  }
}
