/**
 * deleteVm — runbook
 *   1. validate          load the VM and its boot media; mark it DELETING
 *   2. stop-domain       pull the plug (the user asked for deletion, not a shutdown)
 *   3. undefine-domain   remove the libvirt definition
 *      delete-ports      only for a VM with NICs: their OVN switch ports, in one transaction
 *      remove-seed-iso   only for a VM with access settings: its cloud-init seed ISO
 *   4. delete-disk       remove the boot disk
 *   5. release           give the host's CPU and memory back
 *   6. record            remove the VM and volume rows; the Operation row stays as the record
 * Data disks (made with the VM or attached later) are kept: undefining the domain detaches them, and
 * record leaves them READY and free, as OpenStack keeps a deleted server's volumes. A VM's data is
 * never destroyed as a side effect; DELETE /v1/volumes/:id removes a volume.
 * No step has an undo: a half-deleted VM cannot be put back, so deletion recovers forward. Every
 * step is idempotent; if one fails the VM is marked FAILED with the reason and a repeated DELETE
 * finishes the job. A VM that was never placed (a failed create) skips the host steps.
 */
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database, expectVmState } from "./database-activities";
import { northbound } from "./network-activities";

export interface DeleteVmInput {
  operationId: string;
  vmId: string;
  timeouts: HostCallTimeouts;
}

const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 5 } };

const STEPS = 6;

export async function deleteVm(input: DeleteVmInput): Promise<void> {
  const { vmId } = input;
  const saga = new OperationSaga(input.operationId, STEPS);
  try {
    const { vm, media, portIds } = await saga.step("validate", async () => {
      const loaded = expectVmState(await database.loadVm(vmId), ["RUNNING", "STOPPED", "FAILED", "DELETING"]);
      const bootMedia = await database.loadVmBootMedia(vmId);
      const nics = await database.loadVmPorts(vmId);
      await database.vmStateChanged({ vmId, state: "DELETING" });
      return { vm: loaded, media: bootMedia, portIds: nics.map((p) => p.id) };
    });
    if (vm.hostId && vm.poolId) {
      const host = hostActivities(vm.hostId, input.timeouts, HOST_STEP);
      const disk = { poolId: vm.poolId, volumeId: vm.bootVolumeId };
      await saga.step("stop-domain", () => host.forceStopDomain(vmId));
      await saga.step("undefine-domain", () => host.undefineDomain(vmId));
      if (portIds.length > 0) await saga.step("delete-ports", () => northbound.nbDeletePorts(portIds));
      if (media.cloudInit) {
        await saga.step("remove-seed-iso", () => host.removeVmSeedIso({ vmId, poolId: disk.poolId }));
      }
      await saga.step("delete-disk", () => host.deleteDisk(disk));
      await saga.step("release", () => database.releaseVm(vmId));
    }
    await saga.step("record", () => database.vmDeleted(vmId));
    await saga.succeed();
  } catch (err) {
    await saga.fail(err, (failure) =>
      database.vmStateChanged({ vmId, state: "FAILED", errorCode: failure.code, errorMessage: `delete did not finish: ${failure.message}` }),
    );
  }
}
