import { Router, type Request } from "express";
import type { ApiContext } from "../use-cases/context";
import { createNetwork, deleteNetwork, requireNetwork } from "../use-cases/networks";
import { createPorts, deletePort, requirePort, updatePort } from "../use-cases/ports";
import { presentNetwork, presentPort } from "../network-presenters";
import { createNetworkBody, createPortBody, createPortsBody, updatePortBody } from "../network-schemas";
import { idParam } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { sendAccepted } from "./accepted";

const key = (req: Request) => idempotencyKey(req.get("idempotency-key"));

export function networkRoutes(ctx: ApiContext): Router {
  const router = Router();
  const networkIdOf = (req: Request) => parse(idParam, req.params.id, "network id");

  router.post("/", async (req, res) => {
    const started = await createNetwork(ctx, parse(createNetworkBody, req.body, "body"), res.locals.user, key(req));
    sendAccepted(ctx.config, res, started, { networkId: started.networkId, network: `/v1/networks/${started.networkId}` });
  });

  router.get("/", async (_req, res) => {
    const networks = await ctx.prisma.network.findMany({ orderBy: { createdAt: "asc" }, include: { _count: { select: { ports: true } } } });
    res.json({ items: networks.map(presentNetwork) });
  });

  router.get("/:id", async (req, res) => {
    const networkId = networkIdOf(req);
    await requireNetwork(ctx, networkId);
    res.json(presentNetwork(await ctx.prisma.network.findUniqueOrThrow({ where: { id: networkId }, include: { _count: { select: { ports: true } } } })));
  });

  router.delete("/:id", async (req, res) => {
    sendAccepted(ctx.config, res, await deleteNetwork(ctx, networkIdOf(req), res.locals.user, key(req)));
  });

  return router;
}

export function portRoutes(ctx: ApiContext): Router {
  const router = Router();
  const portIdOf = (req: Request) => parse(idParam, req.params.id, "port id");

  // One port, or {"ports": [...]} for a batch.
  router.post("/", async (req, res) => {
    if (req.body && typeof req.body === "object" && "ports" in req.body) {
      const started = await createPorts(ctx, parse(createPortsBody, req.body, "body").ports, res.locals.user, key(req));
      return sendAccepted(ctx.config, res, started, { portIds: started.portIds });
    }
    const started = await createPorts(ctx, [parse(createPortBody, req.body, "body")], res.locals.user, key(req));
    const portId = started.portIds?.[0] ?? null;
    sendAccepted(ctx.config, res, started, { portId, port: portId && `/v1/ports/${portId}` });
  });

  router.get("/", async (req, res) => {
    const networkId = req.query.networkId === undefined ? undefined : parse(idParam, req.query.networkId, "networkId");
    const ports = await ctx.prisma.port.findMany({ where: { networkId }, orderBy: { createdAt: "asc" }, include: { securityGroups: true } });
    res.json({ items: ports.map(presentPort) });
  });

  router.get("/:id", async (req, res) => {
    const portId = portIdOf(req);
    await requirePort(ctx, portId);
    res.json(presentPort(await ctx.prisma.port.findUniqueOrThrow({ where: { id: portId }, include: { securityGroups: true } })));
  });

  router.patch("/:id", async (req, res) => {
    const { securityGroupIds } = parse(updatePortBody, req.body, "body");
    sendAccepted(ctx.config, res, await updatePort(ctx, portIdOf(req), securityGroupIds, res.locals.user, key(req)));
  });

  router.delete("/:id", async (req, res) => {
    sendAccepted(ctx.config, res, await deletePort(ctx, portIdOf(req), res.locals.user, key(req)));
  });

  return router;
}
