/**
 * detachNic — unplugs a NIC from a VM and deletes its port. Runbook:
 *   1. validate     the VM is RUNNING or STOPPED on a host and the port is its NIC
 *   2. unplug-nic   out of the guest (waiting for a running guest to release it) and the definition
 *   3. delete-port  its OVN switch port, port-group memberships and DNS record
 *   4. record       the port row goes: its address and MAC are free
 * No undo: detaching recovers forward (every step is idempotent); on failure the port is FAILED
 * and a repeated DELETE finishes. A guest without an OS never releases a PCI NIC: stop it first.
 */
import { database } from "./database-activities";
import { hostActivities } from "./host-activities";
import { loadNic, NIC_UNPLUG, type NicInput } from "./attach-nic";
import { northbound } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export async function detachNic(input: NicInput): Promise<void> {
  const { vmId, portId } = input;
  const portIds = [portId];
  const saga = new OperationSaga(input.operationId, 4);
  try {
    const { hostId, port } = await saga.step("validate", () => loadNic(input));
    await saga.step("unplug-nic", () => hostActivities(hostId, input.timeouts, NIC_UNPLUG).unplugNic({ vmId, portId, mac: port.mac }));
    await saga.step("delete-port", () => northbound.nbDeletePorts(portIds));
    await saga.commit("record", () => database.portsRemoved(portIds));
  } catch (err) {
    await saga.fail(err, () => database.portsStateChanged({ portIds, state: "FAILED" }));
  }
}
