import { randomUUID } from "node:crypto";
import type { Network } from "@prisma/client";
import { cidrContains, ipToInt, parseCidr, intToIp, randomMac } from "../../common/ipv4";
import type { CreateNetworkInput } from "../../workflows/create-network";
import type { DeleteNetworkInput } from "../../workflows/delete-network";
import type { CreateNetworkBody } from "../network-schemas";
import { ApiError } from "../problem";
import type { ApiContext } from "./context";
import { startOperation, type StartedOperation } from "./start-operation";

const GENEVE_MTU = 1442;
const UNDERLAY_MTU = 1500;

export async function requireNetwork(ctx: ApiContext, networkId: string): Promise<Network> {
  const network = await ctx.prisma.network.findUnique({ where: { id: networkId } });
  if (!network) throw new ApiError("NOT_FOUND", `network ${networkId} does not exist`);
  return network;
}

/** Checks what the schema cannot (addresses against the CIDR, type-specific fields) and fills the defaults. */
function networkRow(body: CreateNetworkBody) {
  const cidr = parseCidr(body.cidr);
  if (!cidr || cidr.prefix < 8 || cidr.prefix > 29) throw new ApiError("VALIDATION_FAILED", `cidr ${body.cidr} must be an IPv4 network from /8 to /29 (no host bits set)`);
  const gateway = body.gateway ?? intToIp(cidr.network + 1);
  const inside = (ip: string) => cidrContains(cidr, ipToInt(ip)) && ipToInt(ip) !== cidr.network && ipToInt(ip) !== cidr.broadcast;
  if (!inside(gateway)) throw new ApiError("VALIDATION_FAILED", `gateway ${gateway} is not a host address of ${body.cidr}`);
  for (const range of body.reservedRanges) {
    if (!inside(range.start) || !inside(range.end) || ipToInt(range.start) > ipToInt(range.end)) {
      throw new ApiError("VALIDATION_FAILED", `reserved range ${range.start}-${range.end} is not an ascending range of host addresses of ${body.cidr}`);
    }
  }
  const provider = body.type === "vlan" || body.type === "external";
  if (provider && !body.physicalNetwork) throw new ApiError("VALIDATION_FAILED", `a ${body.type} network needs physicalNetwork (a provider network the hosts bridge to)`);
  if (!provider && body.physicalNetwork) throw new ApiError("VALIDATION_FAILED", `a ${body.type} network has no physicalNetwork`);
  if (body.type === "vlan" && body.vlanTag === undefined) throw new ApiError("VALIDATION_FAILED", "a vlan network needs vlanTag");
  if (!provider && body.vlanTag !== undefined) throw new ApiError("VALIDATION_FAILED", `a ${body.type} network has no vlanTag`);
  return {
    name: body.name,
    type: body.type,
    cidr: body.cidr,
    gateway,
    dnsServers: body.dnsServers,
    mtu: body.mtu ?? (provider ? UNDERLAY_MTU : GENEVE_MTU),
    dhcpEnabled: body.dhcp,
    dhcpServerMac: randomMac(),
    reservedRanges: body.reservedRanges,
    physicalNetwork: body.physicalNetwork ?? null,
    vlanTag: body.vlanTag ?? null,
  };
}

export async function createNetwork(ctx: ApiContext, body: CreateNetworkBody, user: string, idempotencyKey?: string): Promise<StartedOperation & { networkId: string }> {
  const networkId = randomUUID();
  const row = networkRow(body);
  const started = await startOperation(ctx, {
    type: "create-network",
    targetType: "network",
    targetId: networkId,
    requestedBy: user,
    idempotencyKey,
    requestBody: body,
    workflowType: "createNetwork",
    workflowArgs: (operationId): [CreateNetworkInput] => [{ operationId, networkId }],
    summary: `Create ${body.type} network ${body.name} (${body.cidr})`,
    searchAttributes: [],
    inTransaction: async (tx) => {
      await tx.network.create({ data: { id: networkId, ...row } });
    },
  });
  return { ...started, networkId: started.operation.targetId };
}

/** 409 NETWORK_IN_USE while any port (a VM's NIC, a router's leg, a floating IP) is on it. */
export async function deleteNetwork(ctx: ApiContext, networkId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const network = await requireNetwork(ctx, networkId);
  return startOperation(ctx, {
    type: "delete-network",
    targetType: "network",
    targetId: networkId,
    requestedBy: user,
    idempotencyKey,
    requestBody: {},
    workflowType: "deleteNetwork",
    workflowArgs: (operationId): [DeleteNetworkInput] => [{ operationId, networkId }],
    summary: `Delete network ${network.name}`,
    searchAttributes: [],
    inTransaction: async (tx) => {
      // The same row lock IPAM takes: no port can be added between this check and DELETING.
      await tx.$queryRaw`SELECT id FROM "Network" WHERE id = ${networkId} FOR UPDATE`;
      const ports = await tx.port.count({ where: { networkId } });
      if (ports > 0) throw new ApiError("NETWORK_IN_USE", `network ${networkId} has ${ports} port(s): delete them (or their VMs, routers' interfaces, floating IPs) first`);
      await tx.network.update({ where: { id: networkId }, data: { state: "DELETING" } });
    },
  });
}
