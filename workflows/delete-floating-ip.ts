/**
 * deleteFloatingIp — runbook
 *   1. validate   (floating-ip-steps.ts)
 *   2. move-nat   its NAT rule removed
 *   3. record     the floating IP and its address go
 * A failure puts the rule back (the floating IP still works) and leaves it FAILED; a repeated DELETE finishes.
 */
import { database } from "./database-activities";
import { moveFloatingIp, type FloatingIpInput } from "./floating-ip-steps";
import { OperationSaga } from "./operation-saga";

export async function deleteFloatingIp(input: FloatingIpInput): Promise<void> {
  const saga = new OperationSaga(input.operationId, 3);
  try {
    await moveFloatingIp(saga, { ...input, toPortId: null });
    await saga.commit("record", () => database.floatingIpRemoved(input.floatingIpId));
  } catch (err) {
    await saga.fail(err, () => database.floatingIpStateChanged({ floatingIpId: input.floatingIpId, state: "FAILED" }));
  }
}
