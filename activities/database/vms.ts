import { Prisma, type PrismaClient, type VmState } from "@prisma/client";
import type { FailedCleanupStep, Leftover, PendingCleanup } from "../../common/cleanup";
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
     * A create that did not finish. With every undo done, nothing of it is left: the unmade volume
     * rows go and the VM row stays FAILED with the reason, on no host, until the user deletes it.
     * With `cleanup` (an undo failed), what is left keeps its references: the VM goes to ERROR on
     * its host, a volume whose removal failed stays as a row in ERROR (a data disk detached, so its
     * own DELETE can finish it; a LUN stays assigned, never handed out before its wipe), and only
     * the volumes that were removed lose their rows.
     */
    async vmCreateFailed(input: { vmId: string; errorCode: string; errorMessage: string; cleanup?: PendingCleanup | null }): Promise<void> {
      const { vmId, cleanup } = input;
      const error = { errorCode: input.errorCode, errorMessage: input.errorMessage };
      if (!cleanup) {
        await prisma.$transaction([
          prisma.volume.deleteMany({ where: { vmId, state: "CREATING" } }),
          // Its NICs' switch ports were deleted by the undo: their addresses are free again.
          prisma.port.deleteMany({ where: { vmId, owner: "VM" } }),
          prisma.vm.updateMany({ where: { id: vmId }, data: { state: "FAILED", hostId: null, cleanup: Prisma.DbNull, ...error } }),
        ]);
        return;
      }
      await prisma.$transaction(async (tx) => {
        const vm = await tx.vm.findUnique({ where: { id: vmId } });
        if (!vm) return;
        const leftVolumes = cleanup.remains.flatMap((r) => (r.kind === "volume" ? [r.volumeId] : []));
        for (const volumeId of leftVolumes) {
          const own = { ...cleanup, failed: cleanup.failed.filter((f) => f.leftover?.kind === "volume" && f.leftover.volumeId === volumeId) };
          own.remains = own.failed.flatMap((f) => (f.leftover ? [f.leftover] : []));
          const detach = volumeId === vm.bootVolumeId ? {} : { vmId: null, targetDev: null };
          await tx.volume.updateMany({ where: { id: volumeId, state: "CREATING" }, data: { state: "ERROR", cleanup: own as unknown as Prisma.InputJsonValue, ...detach } });
        }
        await tx.volume.deleteMany({ where: { vmId, state: "CREATING", id: { notIn: leftVolumes } } });
        await tx.vm.update({ where: { id: vmId }, data: { state: "ERROR", cleanup: cleanup as unknown as Prisma.InputJsonValue, ...error } });
      });
    },

    /**
     * A delete that did not finish (the VM is DELETING). A VM on a host goes to ERROR with what may be left there (its
     * domain, seed ISO and boot disk), every reference kept: a repeated DELETE finishes the job.
     * A VM on no host has nothing left anywhere: FAILED with the reason.
     */
    async vmDeleteFailed(input: { vmId: string; failed: FailedCleanupStep }): Promise<void> {
      const vm = await prisma.vm.findUnique({ where: { id: input.vmId }, include: { cloudInit: { select: { vmId: true } } } });
      // A delete refused before it began changed nothing.
      if (!vm || vm.state !== "DELETING") return;
      const error = { errorCode: input.failed.code, errorMessage: `delete did not finish: ${input.failed.message}` };
      if (!vm.hostId || !vm.poolId) {
        await prisma.vm.update({ where: { id: vm.id }, data: { state: "FAILED", ...error } });
        return;
      }
      const on = { hostId: vm.hostId, poolId: vm.poolId };
      const remains: Leftover[] = [
        { kind: "domain", hostId: on.hostId, vmId: vm.id },
        ...(vm.cloudInit ? [{ kind: "seed-iso" as const, ...on, vmId: vm.id }] : []),
        { kind: "volume", ...on, volumeId: vm.bootVolumeId },
      ];
      const cleanup: PendingCleanup = { operationId: input.failed.operationId, failed: [input.failed], remains };
      await prisma.vm.update({ where: { id: vm.id }, data: { state: "ERROR", ...error, cleanup: cleanup as unknown as Prisma.InputJsonValue } });
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
