import type { VmSpec } from "../activities/database/vms";
import { database } from "./database-activities";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { northbound } from "./network-activities";
import type { OperationSaga } from "./operation-saga";

// Each removal is one libvirt call or one file; retried, since every one accepts "already gone".
const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 5 } };

/**
 * Removes everything of a VM from its host, as steps of the caller's saga: stop-domain,
 * undefine-domain, delete-ports (a VM with NICs: their OVN switch ports), remove-seed-iso (a VM with
 * access settings), delete-disk, release (its capacity). Every step is idempotent, so this is also how a pending cleanup is finished: deleteVm
 * runs it for any VM that still references a host (a VM in ERROR included), and the host sweep
 * (reconcileHost) can run it for a VM in ERROR. Data disks are not touched (they outlive the VM).
 */
export async function removeVmFromHost(
  saga: OperationSaga,
  vm: Pick<VmSpec, "id" | "bootVolumeId"> & { hostId: string; poolId: string },
  parts: { hasSeedIso: boolean; portIds: string[] },
  timeouts: HostCallTimeouts,
): Promise<void> {
  const host = hostActivities(vm.hostId, timeouts, HOST_STEP);
  const disk = { poolId: vm.poolId, volumeId: vm.bootVolumeId };
  await saga.step("stop-domain", () => host.forceStopDomain(vm.id));
  await saga.step("undefine-domain", () => host.undefineDomain(vm.id));
  if (parts.portIds.length > 0) await saga.step("delete-ports", () => northbound.nbDeletePorts(parts.portIds));
  if (parts.hasSeedIso) await saga.step("remove-seed-iso", () => host.removeVmSeedIso({ vmId: vm.id, poolId: vm.poolId }));
  await saga.step("delete-disk", () => host.deleteDisk(disk));
  await saga.step("release", () => database.releaseVm(vm.id));
}
