import type { Host, Operation, OperationStep, StoragePoolHost, Vm, Volume } from "@prisma/client";
import type { ControlPlaneConfig } from "../common/config";

/** JSON shapes the API returns; BigInt sizes become numbers (safe up to 8 PiB). */

export function presentVolume(volume: Volume) {
  return {
    id: volume.id,
    name: volume.name,
    poolId: volume.poolId,
    hostId: volume.hostId,
    sizeBytes: Number(volume.sizeBytes),
    format: volume.format,
    state: volume.state,
  };
}

export function presentVm(vm: Vm & { volumes?: Volume[] }) {
  return {
    id: vm.id,
    name: vm.name,
    state: vm.state,
    vcpus: vm.vcpus,
    memoryMiB: vm.memoryMiB,
    diskSizeGiB: vm.diskSizeGiB,
    hostId: vm.hostId,
    poolId: vm.poolId,
    baseImage: vm.baseImage,
    bootVolumeId: vm.bootVolumeId,
    error: vm.errorCode ? { code: vm.errorCode, message: vm.errorMessage } : null,
    volumes: vm.volumes?.map(presentVolume),
    createdAt: vm.createdAt,
    updatedAt: vm.updatedAt,
    links: { self: `/v1/vms/${vm.id}`, operations: `/v1/operations?targetId=${vm.id}` },
  };
}

export function temporalUiLink(config: ControlPlaneConfig, workflowId: string): string {
  return `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.temporalNamespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

export function presentOperation(config: ControlPlaneConfig, op: Operation & { steps?: OperationStep[] }) {
  return {
    id: op.id,
    type: op.type,
    target: { type: op.targetType, id: op.targetId },
    state: op.state,
    progress: op.progress,
    currentStep: op.currentStep,
    steps: op.steps
      ?.sort((a, b) => a.id - b.id)
      .map((s) => ({
        name: s.name,
        kind: s.kind,
        state: s.state,
        startedAt: s.startedAt,
        finishedAt: s.finishedAt,
        error: s.errorCode ? { code: s.errorCode, message: s.errorMessage } : null,
      })),
    error: op.errorCode ? { code: op.errorCode, message: op.errorMessage } : null,
    requestedBy: op.requestedBy,
    workflowId: op.workflowId,
    createdAt: op.createdAt,
    startedAt: op.startedAt,
    finishedAt: op.finishedAt,
    links: { self: `/v1/operations/${op.id}`, temporalUi: temporalUiLink(config, op.workflowId) },
  };
}

export function presentHost(host: Host & { pools: StoragePoolHost[]; vms: Pick<Vm, "vcpus" | "memoryMiB">[] }) {
  return {
    id: host.id,
    hostname: host.hostname,
    state: host.state,
    cpuCount: host.cpuCount,
    memoryMiB: host.memoryMiB,
    allocated: {
      vcpus: host.vms.reduce((sum, vm) => sum + vm.vcpus, 0),
      memoryMiB: host.vms.reduce((sum, vm) => sum + vm.memoryMiB, 0),
    },
    libvirtUri: host.libvirtUri,
    domainType: host.domainType,
    lastSeenAt: host.lastSeenAt,
    pools: host.pools.map((p) => ({
      poolId: p.poolId,
      health: p.health,
      capacityBytes: Number(p.capacityBytes),
      freeBytes: Number(p.freeBytes),
      volumeCount: p.volumeCount,
      reportedAt: p.reportedAt,
    })),
  };
}
