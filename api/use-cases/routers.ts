import { randomUUID } from "node:crypto";
import type { Router } from "@prisma/client";
import type { RouterInput } from "../../workflows/create-router";
import type { FloatingIpInput } from "../../workflows/floating-ip-steps";
import { ApiError } from "../problem";
import type { ApiContext } from "./context";
import { allocateAddresses } from "./ipam";
import { requirePort } from "./ports";
import { startOperation, type StartedOperation } from "./start-operation";

export async function requireRouter(ctx: ApiContext, routerId: string): Promise<Router> {
  const router = await ctx.prisma.router.findUnique({ where: { id: routerId } });
  if (!router) throw new ApiError("NOT_FOUND", `router ${routerId} does not exist`);
  return router;
}

async function requireNetworkOfType(ctx: ApiContext, networkId: string, types: string[], role: string) {
  const network = await ctx.prisma.network.findUnique({ where: { id: networkId } });
  if (!network) throw new ApiError("VALIDATION_FAILED", `network ${networkId} does not exist`);
  if (!types.includes(network.type)) throw new ApiError("VALIDATION_FAILED", `${role} must be a ${types.join(" or ")} network; ${networkId} is ${network.type}`);
  if (network.state !== "ACTIVE") throw new ApiError("CONFLICT", `network ${networkId} is ${network.state}`);
  return network;
}

const routerOperation = (ctx: ApiContext, router: { id: string }, type: "create-router" | "update-router" | "delete-router", workflowType: string, summary: string) =>
  (user: string, idempotencyKey: string | undefined, requestBody: unknown, inTransaction?: Parameters<typeof startOperation>[1]["inTransaction"]) =>
    startOperation(ctx, {
      type,
      targetType: "router",
      targetId: router.id,
      requestedBy: user,
      idempotencyKey,
      requestBody,
      workflowType,
      workflowArgs: (operationId): [RouterInput] => [{ operationId, routerId: router.id }],
      summary,
      searchAttributes: [],
      inTransaction,
    });

/** A router; with externalNetworkId its gateway leg gets an address there (SNAT source, floating IPs' gateway). */
export async function createRouter(ctx: ApiContext, body: { name: string; externalNetworkId?: string; snat: boolean }, user: string, idempotencyKey?: string): Promise<StartedOperation & { routerId: string }> {
  const routerId = randomUUID();
  if (body.externalNetworkId) await requireNetworkOfType(ctx, body.externalNetworkId, ["external"], "externalNetworkId");
  const started = await routerOperation(ctx, { id: routerId }, "create-router", "createRouter", `Create router ${body.name}`)(user, idempotencyKey, body, async (tx) => {
    await tx.router.create({ data: { id: routerId, name: body.name, externalNetworkId: body.externalNetworkId ?? null, snat: body.snat } });
    if (body.externalNetworkId) {
      const [address] = await allocateAddresses(tx, body.externalNetworkId, [{ owner: "ROUTER_GATEWAY" }]);
      await tx.port.create({ data: { id: address!.portId, networkId: body.externalNetworkId, owner: "ROUTER_GATEWAY", mac: address!.mac, ip: address!.ip, routerId } });
    }
  });
  return { ...started, routerId: started.operation.targetId };
}

function checkRouterActive(router: Router): void {
  if (router.state !== "ACTIVE") throw new ApiError("CONFLICT", `router ${router.id} is ${router.state}`);
}

/** Joins a network to the router: the leg takes the network's gateway address. */
export async function addInterface(ctx: ApiContext, routerId: string, networkId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const router = await requireRouter(ctx, routerId);
  checkRouterActive(router);
  const network = await requireNetworkOfType(ctx, networkId, ["overlay", "vlan"], "a router interface's network");
  return routerOperation(ctx, router, "update-router", "updateRouter", `Add network ${network.name} to router ${router.name}`)(user, idempotencyKey, { add: networkId }, async (tx) => {
    if (await tx.port.count({ where: { networkId, owner: "ROUTER_INTERFACE" } })) throw new ApiError("CONFLICT", `network ${networkId} already has a router`);
    const [address] = await allocateAddresses(tx, networkId, [{ ip: network.gateway, owner: "ROUTER_INTERFACE" }]);
    await tx.port.create({ data: { id: address!.portId, networkId, owner: "ROUTER_INTERFACE", mac: address!.mac, ip: address!.ip, routerId } });
  });
}

export async function removeInterface(ctx: ApiContext, routerId: string, networkId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const router = await requireRouter(ctx, routerId);
  checkRouterActive(router);
  const leg = await ctx.prisma.port.findFirst({ where: { routerId, networkId, owner: "ROUTER_INTERFACE" } });
  if (!leg) throw new ApiError("NOT_FOUND", `router ${routerId} has no interface on network ${networkId}`);
  return routerOperation(ctx, router, "update-router", "updateRouter", `Remove network ${networkId} from router ${router.name}`)(user, idempotencyKey, { remove: networkId }, async (tx) => {
    const floating = await tx.floatingIp.count({ where: { routerId, targetPort: { networkId } } });
    if (floating) throw new ApiError("ROUTER_IN_USE", `${floating} floating IP(s) reach network ${networkId} through router ${routerId}: move or free them first`);
    await tx.port.update({ where: { id: leg.id }, data: { state: "DELETING" } });
  });
}

export async function deleteRouter(ctx: ApiContext, routerId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const router = await requireRouter(ctx, routerId);
  return routerOperation(ctx, router, "delete-router", "deleteRouter", `Delete router ${router.name}`)(user, idempotencyKey, {}, async (tx) => {
    const legs = await tx.port.count({ where: { routerId, owner: "ROUTER_INTERFACE" } });
    const floating = await tx.floatingIp.count({ where: { routerId } });
    if (legs || floating) throw new ApiError("ROUTER_IN_USE", `router ${routerId} has ${legs} interface(s) and ${floating} floating IP(s)`);
    await tx.router.update({ where: { id: routerId }, data: { state: "DELETING" } });
  });
}

const floatingIpOperation = (ctx: ApiContext, floatingIpId: string, type: "create-floating-ip" | "update-floating-ip" | "delete-floating-ip", workflowType: string, summary: string, toPortId: string | null) =>
  (user: string, idempotencyKey: string | undefined, requestBody: unknown, inTransaction?: Parameters<typeof startOperation>[1]["inTransaction"]) =>
    startOperation(ctx, {
      type,
      targetType: "floating-ip",
      targetId: floatingIpId,
      requestedBy: user,
      idempotencyKey,
      requestBody,
      workflowType,
      workflowArgs: (operationId): [FloatingIpInput] => [{ operationId, floatingIpId, toPortId }],
      summary,
      searchAttributes: [],
      inTransaction,
    });

async function checkTarget(ctx: ApiContext, portId: string): Promise<void> {
  const port = await requirePort(ctx, portId);
  if (port.owner !== "VM" && port.owner !== "USER") throw new ApiError("VALIDATION_FAILED", `port ${portId} is a router's or floating IP's: a floating IP forwards to a VM's NIC or a user port`);
}

/** A floating IP: an address of the external network (IPAM as for any port), forwarded to portId if given. */
export async function createFloatingIp(ctx: ApiContext, body: { networkId: string; portId?: string }, user: string, idempotencyKey?: string): Promise<StartedOperation & { floatingIpId: string }> {
  await requireNetworkOfType(ctx, body.networkId, ["external"], "a floating IP's network");
  if (body.portId) await checkTarget(ctx, body.portId);
  const floatingIpId = randomUUID();
  const started = await floatingIpOperation(ctx, floatingIpId, "create-floating-ip", "createFloatingIp", `Create a floating IP on network ${body.networkId}`, body.portId ?? null)(
    user,
    idempotencyKey,
    body,
    async (tx) => {
      const [address] = await allocateAddresses(tx, body.networkId, [{ owner: "FLOATING_IP" }]);
      await tx.port.create({ data: { id: address!.portId, networkId: body.networkId, owner: "FLOATING_IP", mac: address!.mac, ip: address!.ip } });
      await tx.floatingIp.create({ data: { id: floatingIpId, networkId: body.networkId, addressPortId: address!.portId } });
    },
  );
  return { ...started, floatingIpId: started.operation.targetId };
}

export async function requireFloatingIp(ctx: ApiContext, floatingIpId: string) {
  const fip = await ctx.prisma.floatingIp.findUnique({ where: { id: floatingIpId }, include: { addressPort: true } });
  if (!fip) throw new ApiError("NOT_FOUND", `floating IP ${floatingIpId} does not exist`);
  return fip;
}

/** Moves the floating IP to another port (or frees it, portId null): one Northbound transaction. */
export async function updateFloatingIp(ctx: ApiContext, floatingIpId: string, portId: string | null, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const fip = await requireFloatingIp(ctx, floatingIpId);
  if (fip.state !== "ACTIVE") throw new ApiError("CONFLICT", `floating IP ${floatingIpId} is ${fip.state}`);
  if (portId) await checkTarget(ctx, portId);
  if (portId && (await ctx.prisma.floatingIp.count({ where: { targetPortId: portId, id: { not: floatingIpId } } }))) {
    throw new ApiError("CONFLICT", `port ${portId} already has a floating IP`);
  }
  return floatingIpOperation(ctx, floatingIpId, "update-floating-ip", "updateFloatingIp", `Move floating IP ${fip.addressPort.ip} to ${portId ?? "nothing"}`, portId)(user, idempotencyKey, { portId });
}

export async function deleteFloatingIp(ctx: ApiContext, floatingIpId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const fip = await requireFloatingIp(ctx, floatingIpId);
  return floatingIpOperation(ctx, floatingIpId, "delete-floating-ip", "deleteFloatingIp", `Delete floating IP ${fip.addressPort.ip}`, null)(user, idempotencyKey, {}, async (tx) => {
    await tx.floatingIp.update({ where: { id: floatingIpId }, data: { state: "DELETING" } });
  });
}
