/**
 * updateSecurityGroupRules — a rule added or removed (the API recorded it as CREATING or DELETING).
 * Runbook:
 *   1. validate    the group is ACTIVE; read its rules before and after the change
 *   2. write-acls  one Northbound transaction (compare-and-swap on the port group's ACLs) making
 *                  them the rules after the change: every port of the group gets it at once
 *                                                            undo: write the rules as before
 *   3. record      new rules ACTIVE, removed ones gone — the point of no return
 * On failure or cancel the ACLs are as before and so are the rule rows.
 */
import { database } from "./database-activities";
import { expectNetState } from "./network-checks";
import { northbound, northboundUndo } from "./network-activities";
import { OperationSaga } from "./operation-saga";
import type { SecurityGroupInput } from "./create-security-group";

export async function updateSecurityGroupRules(input: SecurityGroupInput): Promise<void> {
  const { groupId } = input;
  const saga = new OperationSaga(input.operationId, 3);
  try {
    const { before, after } = await saga.step("validate", async () =>
      expectNetState("security group", groupId, await database.loadSecurityGroupChange(groupId), ["ACTIVE"]),
    );
    await saga.step("write-acls", () => northbound.nbSyncSecurityGroup(after), () => northboundUndo.nbSyncSecurityGroup(before));
    await saga.commit("record", () => database.ruleChangesCommitted(groupId));
  } catch (err) {
    await saga.fail(err, () => database.ruleChangesRolledBack(groupId));
  }
}
