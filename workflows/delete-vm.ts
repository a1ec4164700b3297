/**
 * deleteVm — runbook (also how a VM in ERROR is finished: whatever a failed create or delete left)
 *   1. validate          load the VM and its boot media; mark it DELETING
 *   2. stop-domain       pull the plug (the user asked for deletion, not a shutdown)
 *   3. undefine-domain   remove the libvirt definition
 *      delete-ports      only for a VM with NICs: their OVN switch ports, in one transaction
 *      remove-seed-iso   only for a VM with access settings: its cloud-init seed ISO
 *   4. delete-disk       remove the boot disk
 *   5. release           give the host's CPU and memory back
 *   ── commit ──         nothing is left on the host
 *   6. record            remove the VM and volume rows (the Operation row stays as the record) —
 *                        retried until it succeeds
 * Steps 2-5 (vm-host-cleanup.ts) run whenever the VM still references a host: a VM that was never
 * placed, or whose failed create left nothing, has none and skips them.
 * Data disks (made with the VM or attached later) are kept: undefining the domain detaches them, and
 * record leaves them READY and free, as OpenStack keeps a deleted server's volumes. A VM's data is
 * never destroyed as a side effect; DELETE /v1/volumes/:id removes a volume.
 * No step has an undo: a half-deleted VM cannot be put back, so deletion recovers forward. Every
 * step is idempotent; if one fails the VM goes to ERROR with `cleanup` naming what may be left on
 * its host (every reference kept), and a repeated DELETE finishes the job.
 */
import { failedForwardStep } from "../common/cleanup";
import { OperationSaga } from "./operation-saga";
import type { HostCallTimeouts } from "./host-activities";
import { database, expectVmState } from "./database-activities";
import { removeVmFromHost } from "./vm-host-cleanup";

export interface DeleteVmInput {
  operationId: string;
  vmId: string;
  timeouts: HostCallTimeouts;
}

const STEPS = 6;

export async function deleteVm(input: DeleteVmInput): Promise<void> {
  const { vmId } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const { vm, media, portIds } = await saga.step("validate", async () => {
      const loaded = expectVmState(await database.loadVm(vmId), ["RUNNING", "STOPPED", "FAILED", "DELETING", "ERROR"]);
      const bootMedia = await database.loadVmBootMedia(vmId);
      const nics = await database.loadVmPorts(vmId);
      await database.vmStateChanged({ vmId, state: "DELETING" });
      return { vm: loaded, media: bootMedia, portIds: nics.map((p) => p.id) };
    });
    const { hostId, poolId } = vm;
    if (hostId && poolId) await removeVmFromHost(saga, { ...vm, hostId, poolId }, { hasSeedIso: media.cloudInit !== null, portIds }, input.timeouts);
    await saga.commit("record", () => database.vmDeleted(vmId));
  } catch (err) {
    await saga.fail(err, (failure) => database.vmDeleteFailed({ vmId, failed: failedForwardStep(input.operationId, failure) }));
  }
}
