import type { Host, Operation, OperationStep, Port, StoragePool, StoragePoolHost, Vm, VmGuestAgent, Volume, VolumeSnapshot } from "@prisma/client";
import type { ControlPlaneConfig } from "../common/config";
import { freshSince } from "../activities/database/pools";
import { poolCapacity, provisioningOf } from "./pool-capacity";
import { publicError, withoutHostPaths } from "./public-message";

/** JSON shapes the API returns; BigInt sizes become numbers (safe up to 8 PiB). */

export function presentVolume(volume: Volume & { snapshots?: VolumeSnapshot[] }) {
  return {
    id: volume.id,
    name: volume.name,
    poolId: volume.poolId,
    hostId: volume.hostId,
    sizeBytes: Number(volume.sizeBytes),
    format: volume.format,
    state: volume.state,
    attachment: volume.vmId ? { vmId: volume.vmId, targetDev: volume.targetDev ?? "vda", boot: volume.targetDev === null } : null,
    backingVolumeId: volume.backingVolumeId,
    // ERROR: what failed and what is left (common/cleanup.ts); DELETE finishes the job.
    cleanup: volume.cleanup,
    snapshots: volume.snapshots?.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map(presentSnapshot),
    createdAt: volume.createdAt,
    updatedAt: volume.updatedAt,
    links: { self: `/v1/volumes/${volume.id}`, operations: `/v1/operations?targetId=${volume.id}` },
  };
}

export function presentSnapshot(snapshot: VolumeSnapshot) {
  return { id: snapshot.id, name: snapshot.name, createdAt: snapshot.createdAt };
}

/** The guest agent as the VM's host last reported it; null until a report came. */
export function presentGuestAgent(agent: VmGuestAgent | null | undefined) {
  if (!agent) return null;
  return {
    connected: agent.connected,
    // connected since / disconnected since
    since: agent.since,
    version: { qemuGa: agent.qemuGaVersion, package: agent.packageVersion },
    os: agent.osName ? { name: agent.osName, version: agent.osVersion, id: agent.osId, kernelRelease: agent.kernelRelease } : null,
    hostname: agent.hostname,
    interfaces: agent.interfaces,
    filesystems: agent.filesystems,
    observedAt: agent.observedAt,
  };
}

export function presentVm(vm: Vm & { volumes?: Volume[]; ports?: Port[]; guestAgent?: VmGuestAgent | null }) {
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
    imageId: vm.imageId,
    bootVolumeId: vm.bootVolumeId,
    error: publicError(vm.errorCode, vm.errorMessage),
    // ERROR: what failed and what is left on the host (common/cleanup.ts); DELETE finishes the job.
    cleanup: vm.cleanup,
    volumes: vm.volumes?.map(presentVolume),
    nics: vm.ports
      ?.sort((a, b) => (a.nicIndex ?? 0) - (b.nicIndex ?? 0))
      .map((p) => ({ portId: p.id, networkId: p.networkId, mac: p.mac, ip: p.ip, state: p.state, links: { port: `/v1/ports/${p.id}` } })),
    guestAgent: presentGuestAgent(vm.guestAgent),
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
        error: publicError(s.errorCode, s.errorMessage),
      })),
    error: publicError(op.errorCode, op.errorMessage),
    result: op.result ?? null,
    requestedBy: op.requestedBy,
    workflowId: op.workflowId,
    createdAt: op.createdAt,
    startedAt: op.startedAt,
    finishedAt: op.finishedAt,
    cancelRequestedAt: op.cancelRequestedAt,
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

/**
 * A pool with each host's last report and an aggregate (api/pool-capacity.ts). A report older than
 * the staleness limit counts for nothing (the host stopped reporting). Besides capacity, what is
 * provisioned (volumes' virtual sizes, images) against what the provisioning ratio allows.
 * Configuration is shown; secrets never are (they are not even loaded here).
 */
export function presentPool(pool: StoragePool & { hosts: StoragePoolHost[]; _count?: { volumes: number } }, config: ControlPlaneConfig, provisioned: bigint) {
  const since = freshSince(config);
  const hosts = pool.hosts
    .sort((a, b) => a.hostId.localeCompare(b.hostId))
    .map((h) => ({
      hostId: h.hostId,
      health: h.health,
      stale: h.reportedAt < since,
      capacityBytes: Number(h.capacityBytes),
      freeBytes: Number(h.freeBytes),
      volumeCount: h.volumeCount,
      message: h.message === null ? null : withoutHostPaths(h.message),
      reportedAt: h.reportedAt,
    }));
  const fresh = hosts.filter((h) => !h.stale);
  const healthy = fresh.filter((h) => h.health === "healthy");
  const totals = poolCapacity(pool, pool.hosts, since);
  const health =
    hosts.length === 0 ? "unassigned" : healthy.length === hosts.length ? "healthy" : healthy.length > 0 ? "degraded" : fresh.length === 0 ? "stale" : (fresh[0]?.health ?? "error");
  return {
    id: pool.id,
    name: pool.name,
    kind: pool.kind,
    config: pool.config,
    status: {
      health,
      hostsHealthy: healthy.length,
      hostsAssigned: hosts.length,
      capacityBytes: totals.capacityBytes,
      volumeCount: totals.volumeCount,
      ...provisioningOf(pool, totals, provisioned, config),
    },
    hosts,
    volumes: pool._count?.volumes,
    createdAt: pool.createdAt,
    updatedAt: pool.updatedAt,
    links: { self: `/v1/storage/pools/${pool.id}`, files: `/v1/storage/pools/${pool.id}/files?path=`, operations: `/v1/operations?targetId=${pool.id}` },
  };
}
