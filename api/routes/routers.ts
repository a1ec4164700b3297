import { Router as ExpressRouter, type Request } from "express";
import type { ApiContext } from "../use-cases/context";
import { addInterface, createFloatingIp, createRouter, deleteFloatingIp, deleteRouter, removeInterface, requireFloatingIp, requireRouter, updateFloatingIp } from "../use-cases/routers";
import { presentFloatingIp, presentRouter } from "../network-presenters";
import { createFloatingIpBody, createRouterBody, routerInterfaceBody, updateFloatingIpBody } from "../network-schemas";
import { idParam } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { sendAccepted } from "./accepted";

const key = (req: Request) => idempotencyKey(req.get("idempotency-key"));

export function routerRoutes(ctx: ApiContext): ExpressRouter {
  const router = ExpressRouter();
  const routerIdOf = (req: Request) => parse(idParam, req.params.id, "router id");

  router.post("/", async (req, res) => {
    const started = await createRouter(ctx, parse(createRouterBody, req.body, "body"), res.locals.user, key(req));
    sendAccepted(ctx.config, res, started, { routerId: started.routerId, router: `/v1/routers/${started.routerId}` });
  });
  router.get("/", async (_req, res) => {
    res.json({ items: (await ctx.prisma.router.findMany({ orderBy: { createdAt: "asc" }, include: { ports: true } })).map(presentRouter) });
  });
  router.get("/:id", async (req, res) => {
    const routerId = routerIdOf(req);
    await requireRouter(ctx, routerId);
    res.json(presentRouter(await ctx.prisma.router.findUniqueOrThrow({ where: { id: routerId }, include: { ports: true } })));
  });
  router.delete("/:id", async (req, res) => {
    sendAccepted(ctx.config, res, await deleteRouter(ctx, routerIdOf(req), res.locals.user, key(req)));
  });
  router.post("/:id/interfaces", async (req, res) => {
    const { networkId } = parse(routerInterfaceBody, req.body, "body");
    sendAccepted(ctx.config, res, await addInterface(ctx, routerIdOf(req), networkId, res.locals.user, key(req)));
  });
  router.delete("/:id/interfaces/:networkId", async (req, res) => {
    const networkId = parse(idParam, req.params.networkId, "network id");
    sendAccepted(ctx.config, res, await removeInterface(ctx, routerIdOf(req), networkId, res.locals.user, key(req)));
  });
  return router;
}

export function floatingIpRoutes(ctx: ApiContext): ExpressRouter {
  const router = ExpressRouter();
  const idOf = (req: Request) => parse(idParam, req.params.id, "floating IP id");
  const include = { addressPort: true } as const;

  router.post("/", async (req, res) => {
    const started = await createFloatingIp(ctx, parse(createFloatingIpBody, req.body, "body"), res.locals.user, key(req));
    sendAccepted(ctx.config, res, started, { floatingIpId: started.floatingIpId, floatingIp: `/v1/floating-ips/${started.floatingIpId}` });
  });
  router.get("/", async (_req, res) => {
    res.json({ items: (await ctx.prisma.floatingIp.findMany({ orderBy: { createdAt: "asc" }, include })).map(presentFloatingIp) });
  });
  router.get("/:id", async (req, res) => {
    res.json(presentFloatingIp(await requireFloatingIp(ctx, idOf(req))));
  });
  router.patch("/:id", async (req, res) => {
    const { portId } = parse(updateFloatingIpBody, req.body, "body");
    sendAccepted(ctx.config, res, await updateFloatingIp(ctx, idOf(req), portId, res.locals.user, key(req)));
  });
  router.delete("/:id", async (req, res) => {
    sendAccepted(ctx.config, res, await deleteFloatingIp(ctx, idOf(req), res.locals.user, key(req)));
  });
  return router;
}
