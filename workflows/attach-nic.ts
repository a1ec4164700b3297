/**
 * attachNic — hot-plugs a NIC into a VM. Runbook:
 *   1. validate     the VM is RUNNING or STOPPED on a host; the NIC's port (address and MAC chosen
 *                   by the API) is CREATING
 *   2. create-port  its OVN switch port, requested-chassis = the VM's host        undo: delete it
 *   3. plug-nic     the interface into the domain's definition, and into the guest when it runs
 *                                                                                 undo: unplug it
 *   4. record       port ACTIVE — the point of no return
 * On failure or cancel the NIC is unplugged, its switch port deleted and its address freed.
 */
import { ApplicationFailure } from "@temporalio/workflow";
import { database, expectVmState } from "./database-activities";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { northbound, northboundUndo } from "./network-activities";
import { OperationSaga } from "./operation-saga";

export interface NicInput {
  operationId: string;
  vmId: string;
  portId: string;
  timeouts: HostCallTimeouts;
}

const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };
// Unplugging waits (heartbeating) for the guest to release the device.
const UNPLUG = { startToCloseTimeout: "2m", heartbeatTimeout: "15s", retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 } };

/** The VM's host, and the NIC's port: shared by attachNic and detachNic. */
export async function loadNic(input: NicInput) {
  const vm = expectVmState(await database.loadVm(input.vmId), ["RUNNING", "STOPPED"]);
  if (!vm.hostId) throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `VM ${input.vmId} is on no host` });
  const [port] = await database.loadPorts([input.portId]);
  if (port!.vmId !== input.vmId) throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `port ${input.portId} is not a NIC of VM ${input.vmId}` });
  return { hostId: vm.hostId, port: { ...port!, requestedChassis: vm.hostId } };
}

export { UNPLUG as NIC_UNPLUG };

export async function attachNic(input: NicInput): Promise<void> {
  const { vmId, portId } = input;
  const portIds = [portId];
  const saga = new OperationSaga(input.operationId, 4);
  try {
    const { hostId, port } = await saga.step("validate", () => loadNic(input));
    await saga.step("create-port", () => northbound.nbCreatePorts([port]), () => northboundUndo.nbDeletePorts(portIds));
    const plug = { vmId, portId, mac: port.mac };
    await saga.step(
      "plug-nic",
      () => hostActivities(hostId, input.timeouts, HOST_STEP).plugNic(plug),
      () => hostActivities(hostId, input.timeouts, UNPLUG).unplugNic(plug),
    );
    await saga.commit("record", () => database.portsActivated({ portIds }));
  } catch (err) {
    await saga.fail(err, () => database.portsRemoved(portIds));
  }
}
