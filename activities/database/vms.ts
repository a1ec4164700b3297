import type { PrismaClient, VmState } from "@prisma/client";
import { permanentFailure } from "../../common/errors";

export interface VmSpec {
  id: string;
  name: string;
  vcpus: number;
  memoryMiB: number;
  diskSizeBytes: number;
  baseImage: string | null;
  bootVolumeId: string;
  state: VmState;
  hostId: string | null;
  poolId: string | null;
  /** Volumes attached as data disks (sda, sdb...), in device order. */
  dataDisks: VmDataDisk[];
}

export interface VmDataDisk {
  volumeId: string;
  poolId: string;
  sizeBytes: number;
  targetDev: string;
  /** iSCSI pools: the LUN the API assigned (see Volume.lun). */
  lun: number | null;
}

/** The VM and volume rows: what the user sees in GET /v1/vms. */
export function createVmRecordActivities(prisma: PrismaClient) {
  return {
    async loadVm(vmId: string): Promise<VmSpec> {
      const vm = await prisma.vm.findUnique({
        where: { id: vmId },
        include: { volumes: { where: { targetDev: { not: null } }, orderBy: { targetDev: "asc" } } },
      });
      if (!vm) throw permanentFailure("NOT_FOUND", `VM ${vmId} does not exist`);
      return {
        id: vm.id,
        name: vm.name,
        vcpus: vm.vcpus,
        memoryMiB: vm.memoryMiB,
        diskSizeBytes: vm.diskSizeGiB * 1024 ** 3,
        baseImage: vm.baseImage,
        bootVolumeId: vm.bootVolumeId,
        state: vm.state,
        hostId: vm.hostId,
        poolId: vm.poolId,
        dataDisks: vm.volumes.map((v) => ({ volumeId: v.id, poolId: v.poolId, sizeBytes: Number(v.sizeBytes), targetDev: v.targetDev!, lun: v.lun })),
      };
    },

    /** The create's last step: the VM is running and its disk is real. */
    async vmCreated(input: { vmId: string }): Promise<void> {
      await prisma.$transaction([
        prisma.volume.updateMany({ where: { vmId: input.vmId }, data: { state: "READY" } }),
        prisma.port.updateMany({ where: { vmId: input.vmId }, data: { state: "ACTIVE" } }),
        prisma.vm.update({ where: { id: input.vmId }, data: { state: "RUNNING", errorCode: null, errorMessage: null } }),
      ]);
    },

    /**
     * A create that did not finish: compensation already removed the disk and domain, so the
     * volume rows go too; the VM row stays FAILED with the reason until the user deletes it.
     */
    async vmCreateFailed(input: { vmId: string; errorCode: string; errorMessage: string }): Promise<void> {
      await prisma.$transaction([
        prisma.volume.deleteMany({ where: { vmId: input.vmId, state: "CREATING" } }),
        // Its NICs' switch ports were deleted by the undo: their addresses are free again.
        prisma.port.deleteMany({ where: { vmId: input.vmId, owner: "VM" } }),
        prisma.vm.updateMany({
          where: { id: input.vmId },
          data: { state: "FAILED", hostId: null, errorCode: input.errorCode, errorMessage: input.errorMessage },
        }),
      ]);
    },

    async vmStateChanged(input: { vmId: string; state: VmState; errorCode?: string; errorMessage?: string }): Promise<void> {
      await prisma.vm.updateMany({
        where: { id: input.vmId },
        data: { state: input.state, errorCode: input.errorCode ?? null, errorMessage: input.errorMessage ?? null },
      });
    },

    /** The delete's last step: nothing of the VM is left on any host. Idempotent. */
    async vmDeleted(vmId: string): Promise<void> {
      // Data volumes outlive the VM (its domain, and so their attachment, is gone): they become free volumes.
      await prisma.$transaction([
        prisma.volume.updateMany({ where: { vmId, targetDev: { not: null } }, data: { vmId: null, targetDev: null } }),
        prisma.volume.deleteMany({ where: { vmId } }),
        prisma.port.deleteMany({ where: { vmId, owner: "VM" } }),
        prisma.vm.deleteMany({ where: { id: vmId } }),
      ]);
    },
  };
}
