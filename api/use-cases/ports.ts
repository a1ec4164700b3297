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

/**
 * Inserts port rows and their security-group links with one statement each (arrays through
 * unnest): Prisma's createMany took about a millisecond a row, the whole of a batch's cost.
 */
async function insertPorts(tx: Prisma.TransactionClient, rows: Prisma.PortCreateManyInput[], links: { portId: string; securityGroupId: string }[]): Promise<void> {
  const column = <K extends keyof Prisma.PortCreateManyInput>(key: K) => rows.map((r) => r[key] ?? null);
  await tx.$executeRaw`
    INSERT INTO "Port" (id, "networkId", name, owner, mac, ip, "hostId", state, "createdAt", "updatedAt")
    SELECT id, "networkId", name, owner::"PortOwner", mac, ip, "hostId", 'CREATING'::"NetState", now(), now()
    FROM unnest(${column("id")}::text[], ${column("networkId")}::text[], ${column("name")}::text[], ${column("owner")}::text[],
                ${column("mac")}::text[], ${column("ip")}::text[], ${column("hostId")}::text[]) AS r(id, "networkId", name, owner, mac, ip, "hostId")`;
  if (links.length === 0) return;
  await tx.$executeRaw`
    INSERT INTO "PortSecurityGroup" ("portId", "securityGroupId")
    SELECT * FROM unnest(${links.map((l) => l.portId)}::text[], ${links.map((l) => l.securityGroupId)}::text[])`;
}

/**
 * Creates ports (one, or a batch as Neutron's bulk create does): every address, MAC and id chosen
 * here in the transaction that records the one operation, and one Northbound transaction for all.
 */
export async function createPorts(ctx: ApiContext, bodies: CreatePortBody[], user: string, idempotencyKey?: string): Promise<StartedOperation & { portIds: string[] | null }> {
  const portIds = bodies.map(() => randomUUID());
  const first = bodies[0]!;
  const started = await startOperation(ctx, {
    type: "create-port",
    targetType: "port",
    targetId: portIds[0]!,
    requestedBy: user,
    idempotencyKey,
    requestBody: bodies.length === 1 ? first : { ports: bodies },
    // A batch is recorded by its size and networks, not as the whole list.
    ...(bodies.length === 1 ? {} : { recordedInput: { ports: bodies.length, networkIds: [...new Set(bodies.map((b) => b.networkId))] } }),
    workflowType: "createPort",
    workflowArgs: (operationId): [CreatePortInput] => [{ operationId, portIds }],
    summary: bodies.length === 1 ? `Create port${first.name ? ` ${first.name}` : ""} on network ${first.networkId}` : `Create ${bodies.length} ports`,
    searchAttributes: [],
    inTransaction: async (tx) => {
      const rows: Prisma.PortCreateManyInput[] = [];
      for (const networkId of [...new Set(bodies.map((b) => b.networkId))]) {
        await checkNetworkActive(tx, networkId);
        const onNetwork = bodies.flatMap((body, i) => (body.networkId === networkId ? [{ body, portId: portIds[i]! }] : []));
        const addresses = await allocateAddresses(tx, networkId, onNetwork.map(({ body, portId }) => ({ ip: body.ip, owner: "USER" as const, portId })));
        onNetwork.forEach(({ body, portId }, i) =>
          rows.push({ id: portId, networkId, name: body.name ?? null, owner: "USER", mac: addresses[i]!.mac, ip: addresses[i]!.ip, hostId: body.hostId ?? null }),
        );
      }
      await checkSecurityGroups(tx, [...new Set(bodies.flatMap((b) => b.securityGroupIds))]);
      await insertPorts(tx, rows, bodies.flatMap((body, i) => body.securityGroupIds.map((securityGroupId) => ({ portId: portIds[i]!, securityGroupId }))));
    },
  });
  // A replay answers with the first request's operation; the ids minted here were not used (null).
  return { ...started, portIds: started.replayed ? null : portIds };
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
export async function attachNic(ctx: ApiContext, vmId: string, nic: NicBody, user: string, idempotencyKey?: string): Promise<StartedOperation & { portId: string | null }> {
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
  // A replay answers with the first request's operation; its NIC is in GET /v1/vms/:id (the id minted here was not used).
  return { ...started, portId: started.replayed ? null : portId };
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
