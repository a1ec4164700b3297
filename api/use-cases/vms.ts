import { randomUUID } from "node:crypto";
import path from "node:path";
import type { Prisma, Vm } from "@prisma/client";
import { DATA_DISK_TARGETS } from "../../activities/database/volumes";
import { HOST_ID, VM_ID } from "../../common/search-attributes";
import type { VmPowerAction } from "../../common/operations";
import type { CreateVmInput } from "../../workflows/create-vm";
import type { DeleteVmInput } from "../../workflows/delete-vm";
import type { PowerVmInput } from "../../workflows/power-vm";
import { expectPoolsRoom } from "../pool-capacity";
import { ApiError } from "../problem";
import type { CreateVmBody } from "../schemas";
import { hostTimeouts, type ApiContext } from "./context";
import { assignLun, lunRaceAsConflict, targetLuns, type LunOffer } from "./volumes";
import { startOperation, type StartedOperation } from "./start-operation";
import { listPoolFiles } from "./pools";
import { localPoolId } from "../../common/config";
import { bootImageOf, cloudInitOf, recordableCreateVmBody } from "./vm-boot-media";
import { recordNics } from "./ports";

const DEFAULT_STOP_TIMEOUT_SECONDS = 120;
const GiB = 1024 ** 3;


export async function requireVm(ctx: ApiContext, vmId: string): Promise<Vm> {
  const vm = await ctx.prisma.vm.findUnique({ where: { id: vmId } });
  if (!vm) throw new ApiError("NOT_FOUND", `VM ${vmId} does not exist`);
  return vm;
}

/**
 * The VM's data disks as volumes (ids chosen here), attached to it from the start at sda, sdb...:
 * placement then only picks hosts where their pools are healthy, and createVm makes them.
 */
async function recordDataDisks(tx: Prisma.TransactionClient, vmId: string, body: CreateVmBody, lunOffers: Map<string, LunOffer[]>): Promise<void> {
  const disks = body.disks ?? [];
  const poolIds = [...new Set(disks.map((d) => d.poolId))];
  const found = await tx.storagePool.findMany({ where: { id: { in: poolIds } }, select: { id: true, kind: true } });
  const missing = poolIds.filter((id) => !found.some((p) => p.id === id));
  if (missing.length) throw new ApiError("VALIDATION_FAILED", `no such pool: ${missing.join(", ")}`);
  const taken = new Map<string, number[]>();
  for (const [i, disk] of disks.entries()) {
    const sizeBytes = BigInt(disk.sizeGiB) * BigInt(GiB);
    // An iSCSI data disk is a whole LUN: the smallest free one that fits, none twice in one request.
    const offers = lunOffers.get(disk.poolId);
    const lun = offers ? await assignLun(tx, disk.poolId, offers, sizeBytes, taken.get(disk.poolId)) : null;
    if (lun !== null) taken.set(disk.poolId, [...(taken.get(disk.poolId) ?? []), lun]);
    await tx.volume.create({
      data: {
        id: randomUUID(),
        name: `${body.name}-data-${i + 1}`,
        poolId: disk.poolId,
        vmId,
        targetDev: DATA_DISK_TARGETS[i]!,
        sizeBytes,
        lun,
      },
    });
  }
}

/** The target's LUNs, as a host lists them now, for each iSCSI pool among the data disks. */
async function iscsiLunOffers(ctx: ApiContext, body: CreateVmBody): Promise<Map<string, LunOffer[]>> {
  const poolIds = [...new Set((body.disks ?? []).map((d) => d.poolId))];
  const iscsiPools = await ctx.prisma.storagePool.findMany({ where: { id: { in: poolIds }, kind: "iscsi" }, select: { id: true } });
  return new Map(await Promise.all(iscsiPools.map(async (p) => [p.id, await targetLuns(ctx, p.id)] as const)));
}

/**
 * A baseImage must exist before anything is recorded (a 400 now, not a FAILED VM later): looked up
 * through a host that reaches its pool — the VM's pool, or else the local pool of each online host
 * (placement picks one of them). The host checks again when it makes the disk (symlinks, seeds).
 */
async function requireBaseImage(ctx: ApiContext, body: CreateVmBody): Promise<void> {
  if (!body.baseImage || body.imageId) return;
  const pools = body.poolId ? [body.poolId] : (await ctx.prisma.host.findMany({ where: { state: "ONLINE" }, select: { id: true } })).map((h) => localPoolId(h.id));
  const dir = path.posix.dirname(body.baseImage);
  const name = path.posix.basename(body.baseImage);
  for (const poolId of pools) {
    const entries = await listPoolFiles(ctx, poolId, dir === "." ? "" : dir).catch((err: unknown) => {
      if (err instanceof ApiError && err.code === "NOT_FOUND") return [];
      throw err;
    });
    if (entries.some((e) => e.name === name && e.type !== "directory")) return;
  }
  throw new ApiError("VALIDATION_FAILED", `baseImage ${body.baseImage} does not exist in ${body.poolId ? `pool ${body.poolId}` : "any online host's local pool"}`);
}

/** What the VM's disks provision, by pool: its data disks, and its boot disk when its pool is known now. */
function diskNeeds(body: CreateVmBody, bootPoolId: string | null): Map<string, bigint> {
  const needs = new Map<string, bigint>();
  const add = (poolId: string, sizeGiB: number) => needs.set(poolId, (needs.get(poolId) ?? 0n) + BigInt(sizeGiB) * BigInt(GiB));
  if (bootPoolId) add(bootPoolId, body.diskSizeGiB);
  for (const disk of body.disks ?? []) add(disk.poolId, disk.sizeGiB);
  return needs;
}

/** Records the VM, its boot volume and data disks (ids chosen here, before any side effect) and starts createVm. */
export async function createVm(ctx: ApiContext, body: CreateVmBody, user: string, idempotencyKey?: string): Promise<StartedOperation & { vmId: string }> {
  const vmId = randomUUID();
  const cloudInit = cloudInitOf(body);
  await requireBaseImage(ctx, body);
  const lunOffers = await iscsiLunOffers(ctx, body);
  const started = await lunRaceAsConflict(() => startOperation(ctx, {
    type: "create-vm",
    targetType: "vm",
    targetId: vmId,
    requestedBy: user,
    idempotencyKey,
    requestBody: body,
    recordedInput: recordableCreateVmBody(body),
    workflowType: "createVm",
    workflowArgs: (operationId): [CreateVmInput] => [
      { operationId, vmId, buildsSeedIso: cloudInit !== null, createsPorts: (body.nics?.length ?? 0) > 0, timeouts: hostTimeouts(ctx) },
    ],
    summary: `Create VM ${body.name} (${body.vcpus} vCPU, ${body.memoryMiB} MiB, ${body.diskSizeGiB} GiB)`,
    searchAttributes: [{ key: VM_ID, value: vmId }],
    inTransaction: async (tx) => {
      if (body.poolId && !(await tx.storagePool.findUnique({ where: { id: body.poolId } }))) {
        throw new ApiError("VALIDATION_FAILED", `pool ${body.poolId} does not exist`);
      }
      const boot = await bootImageOf(tx, body);
      await expectPoolsRoom(tx, ctx.config, diskNeeds(body, boot.poolId));
      await tx.vm.create({
        data: {
          id: vmId,
          name: body.name,
          vcpus: body.vcpus,
          memoryMiB: body.memoryMiB,
          diskSizeGiB: body.diskSizeGiB,
          poolId: boot.poolId,
          baseImage: boot.baseImage,
          imageId: boot.imageId,
          bootVolumeId: randomUUID(),
          state: "CREATING",
        },
      });
      if (cloudInit) await tx.vmCloudInit.create({ data: { vmId, ...cloudInit } });
      await recordDataDisks(tx, vmId, body, lunOffers);
      await recordNics(tx, vmId, body.nics ?? []);
    },
  }));
  return { ...started, vmId: started.operation.targetId };
}

export async function deleteVm(ctx: ApiContext, vmId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const vm = await requireVm(ctx, vmId);
  // A floating IP forwarding to one of its NICs would forward to nothing (issue 10): free it first.
  if (await ctx.prisma.floatingIp.count({ where: { targetPort: { vmId } } })) throw new ApiError("CONFLICT", `a floating IP points at a NIC of VM ${vmId}: move or free it first`);
  return startOperation(ctx, {
    type: "delete-vm",
    targetType: "vm",
    targetId: vmId,
    requestedBy: user,
    idempotencyKey,
    requestBody: {},
    workflowType: "deleteVm",
    workflowArgs: (operationId): [DeleteVmInput] => [{ operationId, vmId, timeouts: hostTimeouts(ctx) }],
    summary: `Delete VM ${vm.name}`,
    searchAttributes: [{ key: VM_ID, value: vmId }, ...(vm.hostId ? [{ key: HOST_ID, value: vm.hostId }] : [])],
  });
}

export async function powerAction(
  ctx: ApiContext,
  vmId: string,
  action: VmPowerAction,
  options: { timeoutSeconds?: number },
  user: string,
  idempotencyKey?: string,
): Promise<StartedOperation> {
  const vm = await requireVm(ctx, vmId);
  if (vm.state !== "RUNNING" && vm.state !== "STOPPED") {
    throw new ApiError("CONFLICT", `VM ${vmId} is ${vm.state}; power actions need it RUNNING or STOPPED`);
  }
  return startOperation(ctx, {
    type: `${action}-vm`,
    targetType: "vm",
    targetId: vmId,
    requestedBy: user,
    idempotencyKey,
    requestBody: options,
    workflowType: "powerVm",
    workflowArgs: (operationId): [PowerVmInput] => [
      { operationId, vmId, action, timeouts: hostTimeouts(ctx), stopTimeoutMs: (options.timeoutSeconds ?? DEFAULT_STOP_TIMEOUT_SECONDS) * 1000 },
    ],
    summary: `${action} VM ${vm.name}`,
    searchAttributes: [{ key: VM_ID, value: vmId }, ...(vm.hostId ? [{ key: HOST_ID, value: vm.hostId }] : [])],
  });
}
