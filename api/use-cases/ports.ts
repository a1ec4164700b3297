import { randomUUID } from "node:crypto";
import type { Port, Prisma } from "@prisma/client";
import type { CreatePortInput } from "../../workflows/create-port";
import type { DeletePortInput } from "../../workflows/delete-port";
import type { UpdatePortInput } from "../../workflows/update-port";
import type { NicInput } from "../../workflows/attach-nic";
import { HOST_ID, VM_ID } from "../../common/search-attributes";
import type { CreatePortBody, NicBody } from "../network-schemas";
import { ApiError } from "../problem";
import { hostTimeouts, type ApiContext } from "./context";
import { allocateAddresses } from "./ipam";
import { startOperation, type StartedOperation } from "./start-operation";

export async function requirePort(ctx: ApiContext, portId: string): Promise<Port> {
  const port = await ctx.prisma.port.findUnique({ where: { id: portId } });
  if (!port) throw new ApiError("NOT_FOUND", `port ${portId} does not exist`);
  return port;
}

/** Every group exists and is usable (ACTIVE): its port group is in OVN. */
export async function checkSecurityGroups(tx: Prisma.TransactionClient, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const found = await tx.securityGroup.findMany({ where: { id: { in: ids }, state: "ACTIVE" }, select: { id: true } });
  const missing = ids.filter((id) => !found.some((g) => g.id === id));
  if (missing.length) throw new ApiError("VALIDATION_FAILED", `no usable security group ${missing.join(", ")}`);
}

/** Network usable for new ports: ACTIVE (its switch exists) — IPAM refuses DELETING and FAILED. */
async function checkNetworkActive(tx: Prisma.TransactionClient, networkId: string): Promise<void> {
  const network = await tx.network.findUnique({ where: { id: networkId }, select: { state: true } });
  if (!network) throw new ApiError("VALIDATION_FAILED", `network ${networkId} does not exist`);
  if (network.state !== "ACTIVE") throw new ApiError("CONFLICT", `network ${networkId} is ${network.state}`);
}

/**
 * A VM's NICs as port rows (ids, MACs, IPs chosen here, before any side effect), in interface order
 * from `firstIndex`. Returns their ids.
 */
export async function recordNics(tx: Prisma.TransactionClient, vmId: string, nics: (NicBody & { portId?: string })[], firstIndex = 0): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, nic] of nics.entries()) {
    await checkNetworkActive(tx, nic.networkId);
    await checkSecurityGroups(tx, nic.securityGroupIds);
    const [address] = await allocateAddresses(tx, nic.networkId, [{ ip: nic.ip, owner: "VM", portId: nic.portId }]);
    await tx.port.create({
      data: {
        id: address!.portId,
        networkId: nic.networkId,
        owner: "VM",
        mac: address!.mac,
        ip: address!.ip,
        vmId,
        nicIndex: firstIndex + i,
        securityGroups: { create: nic.securityGroupIds.map((securityGroupId) => ({ securityGroupId })) },
      },
    });
    ids.push(address!.portId);
  }
  return ids;
}

export async function createPort(ctx: ApiContext, body: CreatePortBody, user: string, idempotencyKey?: string): Promise<StartedOperation & { portId: string }> {
  const portId = randomUUID();
  const started = await startOperation(ctx, {
    type: "create-port",
    targetType: "port",
    targetId: portId,
    requestedBy: user,
    idempotencyKey,
    requestBody: body,
    workflowType: "createPort",
    workflowArgs: (operationId): [CreatePortInput] => [{ operationId, portId }],
    summary: `Create port${body.name ? ` ${body.name}` : ""} on network ${body.networkId}`,
    searchAttributes: [],
    inTransaction: async (tx) => {
      await checkNetworkActive(tx, body.networkId);
      await checkSecurityGroups(tx, body.securityGroupIds);
      const [address] = await allocateAddresses(tx, body.networkId, [{ ip: body.ip, owner: "USER", portId }]);
      await tx.port.create({
        data: {
          id: portId,
          networkId: body.networkId,
          name: body.name ?? null,
          owner: "USER",
          mac: address!.mac,
          ip: address!.ip,
          hostId: body.hostId ?? null,
          securityGroups: { create: body.securityGroupIds.map((securityGroupId) => ({ securityGroupId })) },
        },
      });
    },
  });
  return { ...started, portId: started.operation.targetId };
}

/** Only ports made through /v1/ports: a VM's NIC goes with detach, a router's leg with its interface. */
function expectUserPort(port: Port): void {
  if (port.owner !== "USER") throw new ApiError("CONFLICT", `port ${port.id} belongs to ${port.owner === "VM" ? `VM ${port.vmId} (detach the NIC)` : `a router or floating IP`}`);
}

export async function deletePort(ctx: ApiContext, portId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const port = await requirePort(ctx, portId);
  expectUserPort(port);
  return startOperation(ctx, {
    type: "delete-port",
    targetType: "port",
    targetId: portId,
    requestedBy: user,
    idempotencyKey,
    requestBody: {},
    workflowType: "deletePort",
    workflowArgs: (operationId): [DeletePortInput] => [{ operationId, portId }],
    summary: `Delete port ${portId}`,
    searchAttributes: [],
    inTransaction: async (tx) => {
      if (await tx.floatingIp.count({ where: { targetPortId: portId } })) throw new ApiError("CONFLICT", `a floating IP points at port ${portId}: move or free it first`);
      await tx.port.update({ where: { id: portId }, data: { state: "DELETING" } });
    },
  });
}

/** Replaces the port's security groups: one Northbound transaction on their port groups. */
export async function updatePort(ctx: ApiContext, portId: string, securityGroupIds: string[], user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const port = await requirePort(ctx, portId);
  if (port.owner !== "USER" && port.owner !== "VM") throw new ApiError("CONFLICT", `port ${portId} is a router's or floating IP's: it has no security groups`);
  const current = await ctx.prisma.portSecurityGroup.findMany({ where: { portId }, select: { securityGroupId: true } });
  await checkSecurityGroups(ctx.prisma, securityGroupIds);
  const wanted = [...new Set(securityGroupIds)].sort();
  return startOperation(ctx, {
    type: "update-port",
    targetType: "port",
    targetId: portId,
    requestedBy: user,
    idempotencyKey,
    requestBody: { securityGroupIds: wanted },
    workflowType: "updatePort",
    workflowArgs: (operationId): [UpdatePortInput] => [{ operationId, portId, from: current.map((g) => g.securityGroupId).sort(), to: wanted }],
    summary: `Set the security groups of port ${portId}`,
    searchAttributes: [],
  });
}

/** Hot-plugs a NIC: its port is recorded here (address, MAC) and attachNic makes it; the lock is the VM's. */
export async function attachNic(ctx: ApiContext, vmId: string, nic: NicBody, user: string, idempotencyKey?: string): Promise<StartedOperation & { portId: string }> {
  const vm = await ctx.prisma.vm.findUnique({ where: { id: vmId } });
  if (!vm) throw new ApiError("NOT_FOUND", `VM ${vmId} does not exist`);
  if (vm.state !== "RUNNING" && vm.state !== "STOPPED") throw new ApiError("CONFLICT", `VM ${vmId} is ${vm.state}; NICs are attached to RUNNING or STOPPED VMs`);
  const portId = randomUUID();
  const started = await startOperation(ctx, {
    type: "attach-nic",
    targetType: "vm",
    targetId: vmId,
    requestedBy: user,
    idempotencyKey,
    requestBody: nic,
    workflowType: "attachNic",
    workflowArgs: (operationId): [NicInput] => [{ operationId, vmId, portId, timeouts: hostTimeouts(ctx) }],
    summary: `Attach a NIC on network ${nic.networkId} to VM ${vm.name}`,
    searchAttributes: [{ key: VM_ID, value: vmId }, ...(vm.hostId ? [{ key: HOST_ID, value: vm.hostId }] : [])],
    inTransaction: async (tx) => {
      const last = await tx.port.aggregate({ where: { vmId }, _max: { nicIndex: true } });
      await recordNics(tx, vmId, [{ ...nic, portId }], (last._max.nicIndex ?? -1) + 1);
    },
  });
  // A replayed request's port is the one its first request recorded: the operation's NIC, found by its workflow.
  if (!started.replayed) return { ...started, portId };
  const recorded = await ctx.prisma.port.findFirst({ where: { vmId, createdAt: { lte: started.operation.createdAt } }, orderBy: { createdAt: "desc" } });
  return { ...started, portId: recorded?.id ?? portId };
}

export async function detachNic(ctx: ApiContext, vmId: string, portId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const port = await requirePort(ctx, portId);
  if (port.vmId !== vmId) throw new ApiError("NOT_FOUND", `VM ${vmId} has no NIC ${portId}`);
  if (await ctx.prisma.floatingIp.count({ where: { targetPortId: portId } })) throw new ApiError("CONFLICT", `a floating IP points at NIC ${portId}: move or free it first`);
  const vm = await ctx.prisma.vm.findUniqueOrThrow({ where: { id: vmId } });
  return startOperation(ctx, {
    type: "detach-nic",
    targetType: "vm",
    targetId: vmId,
    requestedBy: user,
    idempotencyKey,
    requestBody: { portId },
    workflowType: "detachNic",
    workflowArgs: (operationId): [NicInput] => [{ operationId, vmId, portId, timeouts: hostTimeouts(ctx) }],
    summary: `Detach NIC ${portId} from VM ${vm.name}`,
    searchAttributes: [{ key: VM_ID, value: vmId }, ...(vm.hostId ? [{ key: HOST_ID, value: vm.hostId }] : [])],
  });
}
