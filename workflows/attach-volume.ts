/**
 * attachVolume — runbook
 *   1. validate   the volume is READY, attached to nothing and base of no linked clone; the VM is
 *                 RUNNING or STOPPED on a host that reaches the volume's pool
 *   2. reserve    the VM's next free data disk device (sda, sdb...) recorded on the volume
 *                                                undo: release it (kept if the detach undo failed)
 *   3. attach     into the domain's definition, and hot-plugged when the guest runs
 *                                                                              undo: detach
 *   ── commit ──  the disk is attached: no undo runs after this
 * On failure or cancel the disk is unplugged and the volume is free again. If unplugging fails (until
 * the undo deadline) the volume stays attached in the record, as it is in the domain, and a detach
 * request finishes the job: the record never claims a disk is free that a guest still holds.
 */
import { ApplicationFailure } from "@temporalio/workflow";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database, expectVmState } from "./database-activities";
import { expectVolume, lunAssignmentsOf } from "./volume-checks";

export interface AttachVolumeInput {
  operationId: string;
  volumeId: string;
  vmId: string;
  timeouts: HostCallTimeouts;
}

// virsh attach-device answers in well under a second.
const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };
// The detach undo waits (heartbeating) for the guest to let go of the disk.
const UNDO = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 } };

const STEPS = 3;

export async function attachVolume(input: AttachVolumeInput): Promise<void> {
  const { volumeId, vmId } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const { volume, hostId } = await saga.step("validate", async () => {
      const loaded = expectVolume(await database.loadVolume(volumeId), { states: ["READY"], detached: true, noClones: true });
      const vm = expectVmState(await database.loadVm(vmId), ["RUNNING", "STOPPED"]);
      if (!vm.hostId) throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `VM ${vmId} is on no host` });
      if (loaded.hostId && loaded.hostId !== vm.hostId) {
        const message = `volume ${volumeId} lives on host ${loaded.hostId}'s local pool; VM ${vmId} runs on ${vm.hostId}`;
        throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message });
      }
      return { volume: loaded, hostId: await database.pickPoolHost({ poolId: loaded.poolId, preferred: vm.hostId }) };
    });
    const targetDev = await saga.step(
      "reserve",
      () => database.attachmentReserved({ volumeId, vmId }),
      // A disk the detach undo could not unplug stays recorded as attached: a detach finishes it.
      (failed) => (failed.length > 0 ? Promise.resolve() : database.attachmentReleased(volumeId)),
    );
    await saga.step(
      "attach",
      () => hostActivities(hostId, input.timeouts, HOST_STEP).attachDisk({ vmId, poolId: volume.poolId, volumeId, targetDev, ...lunAssignmentsOf(volume) }),
      () => hostActivities(hostId, input.timeouts, UNDO).detachDisk({ vmId, targetDev }),
    );
    await saga.commit();
  } catch (err) {
    await saga.fail(err, async () => undefined);
  }
}
