/**
 * updateFloatingIp — moves a floating IP to another port (or frees it). Runbook:
 *   1. validate   (floating-ip-steps.ts)
 *   2. move-nat   one transaction: off the old router, onto the new one   undo: move it back
 *   3. record     its port and router — the point of no return
 * On failure or cancel it forwards where it did before.
 */
import { database } from "./database-activities";
import { moveFloatingIp, type FloatingIpInput } from "./floating-ip-steps";
import { OperationSaga } from "./operation-saga";

export async function updateFloatingIp(input: FloatingIpInput): Promise<void> {
  const saga = new OperationSaga(input.operationId, 3);
  try {
    const move = await moveFloatingIp(saga, input);
    await saga.commit("record", () => database.floatingIpMoved({ floatingIpId: input.floatingIpId, toPortId: input.toPortId, routerId: move.to?.routerId ?? null }));
  } catch (err) {
    await saga.fail(err, () => database.floatingIpStateChanged({ floatingIpId: input.floatingIpId, state: "ACTIVE" }));
  }
}
