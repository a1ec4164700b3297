import type { FloatingIpMove } from "../activities/ovn/specs";
import { database } from "./database-activities";
import { northbound, northboundUndo } from "./network-activities";
import type { OperationSaga } from "./operation-saga";

export interface FloatingIpInput {
  operationId: string;
  floatingIpId: string;
  /** The port it is to forward to; null: nowhere. */
  toPortId: string | null;
}

/**
 * The steps every floating IP workflow shares:
 *   validate  where the floating IP is, and the router that joins the new port's network to its
 *             external network (there must be one)
 *   move-nat  one Northbound transaction: the old router's dnat_and_snat rule out, the new one's
 *             in — never both, never neither                        undo: move it back
 */
export async function moveFloatingIp(saga: OperationSaga, input: FloatingIpInput): Promise<FloatingIpMove> {
  const move = await saga.step("validate", () => database.loadFloatingIpMove({ floatingIpId: input.floatingIpId, toPortId: input.toPortId }));
  if (move.from?.routerId !== move.to?.routerId || move.from?.logicalIp !== move.to?.logicalIp) {
    await saga.step("move-nat", () => northbound.nbMoveFloatingIp(move), () => northboundUndo.nbRestoreFloatingIp({ ...move, from: move.to, to: move.from }));
  }
  return move;
}
