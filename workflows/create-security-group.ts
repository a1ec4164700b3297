/**
 * createSecurityGroup — runbook
 *   1. validate           the group (and its default egress rule) is CREATING
 *   2. create-port-group  one Northbound transaction: its port group with the drop, DHCP and rule
 *                         ACLs                                                   undo: delete it
 *   3. record             group and rules ACTIVE — the point of no return
 * On failure or cancel the port group is deleted and the group ends FAILED (DELETE removes it).
 */
import { database } from "./database-activities";
import { expectNetState } from "./network-checks";
import { northbound, northboundUndo } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export interface SecurityGroupInput {
  operationId: string;
  groupId: string;
}

export async function createSecurityGroup(input: SecurityGroupInput): Promise<void> {
  const { groupId } = input;
  const saga = new OperationSaga(input.operationId, 3);
  try {
    const { after } = await saga.step("validate", async () => expectNetState("security group", groupId, await database.loadSecurityGroupChange(groupId), ["CREATING"]));
    await saga.step("create-port-group", () => northbound.nbSyncSecurityGroup(after), () => northboundUndo.nbDeleteSecurityGroup(groupId));
    await saga.commit("record", () => database.securityGroupCreated(groupId));
  } catch (err) {
    await saga.fail(err, () => database.securityGroupStateChanged({ groupId, state: "FAILED" }));
  }
}
