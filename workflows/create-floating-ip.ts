/**
 * createFloatingIp — runbook (the API chose its address on the external network)
 *   1. validate   (floating-ip-steps.ts)
 *   2. move-nat   only when it is made for a port: its NAT rule on that port's router   undo: remove it
 *   3. record     floating IP ACTIVE — the point of no return
 * On failure or cancel the rule is gone and so is the floating IP, its address free again.
 */
import { database } from "./database-activities";
import { moveFloatingIp, type FloatingIpInput } from "./floating-ip-steps";
import { OperationSaga } from "./operation-saga";

export async function createFloatingIp(input: FloatingIpInput): Promise<void> {
  const saga = new OperationSaga(input.operationId, input.toPortId ? 3 : 2);
  try {
    const move = await moveFloatingIp(saga, input);
    await saga.commit("record", () => database.floatingIpMoved({ floatingIpId: input.floatingIpId, toPortId: input.toPortId, routerId: move.to?.routerId ?? null }));
  } catch (err) {
    await saga.fail(err, () => database.floatingIpRemoved(input.floatingIpId));
  }
}
