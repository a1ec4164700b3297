import { Router } from "express";
import { provisionedBytes } from "../pool-capacity";
import type { ApiContext } from "../use-cases/context";
import { assignPool, createPool, deletePool, listPoolFiles, requirePool, unassignPool, updatePool } from "../use-cases/pools";
import { presentPool } from "../presenters";
import { createPoolBody, hostIdPathParam, listFilesQuery, poolIdParam, updatePoolBody } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { sendAccepted } from "./accepted";

export function poolRoutes(ctx: ApiContext): Router {
  const router = Router();
  const include = { hosts: true, _count: { select: { volumes: true } } } as const;
  const present = async (pool: Parameters<typeof presentPool>[0]) => presentPool(pool, ctx.config, await provisionedBytes(ctx.prisma, pool.id));
  const load = async (poolId: string) => present(await ctx.prisma.storagePool.findUniqueOrThrow({ where: { id: poolId }, include }));

  router.post("/", async (req, res) => {
    const body = parse(createPoolBody, req.body, "body");
    const started = await createPool(ctx, body, res.locals.user, idempotencyKey(req.get("idempotency-key")));
    const poolId = started.operation.targetId;
    sendAccepted(ctx.config, res, started, { poolId, pool: `/v1/storage/pools/${poolId}` });
  });

  router.get("/", async (_req, res) => {
    const pools = await ctx.prisma.storagePool.findMany({ orderBy: { name: "asc" }, include });
    res.json({ items: await Promise.all(pools.map(present)) });
  });

  router.get("/:id", async (req, res) => {
    const poolId = parse(poolIdParam, req.params.id, "pool id");
    await requirePool(ctx, poolId);
    res.json(await load(poolId));
  });

  router.patch("/:id", async (req, res) => {
    const poolId = parse(poolIdParam, req.params.id, "pool id");
    await updatePool(ctx, poolId, parse(updatePoolBody, req.body, "body"));
    res.json(await load(poolId));
  });

  router.delete("/:id", async (req, res) => {
    const poolId = parse(poolIdParam, req.params.id, "pool id");
    sendAccepted(ctx.config, res, await deletePool(ctx, poolId, res.locals.user, idempotencyKey(req.get("idempotency-key"))));
  });

  router.post("/:id/hosts/:hostId", async (req, res) => {
    const poolId = parse(poolIdParam, req.params.id, "pool id");
    const hostId = parse(hostIdPathParam, req.params.hostId, "host id");
    sendAccepted(ctx.config, res, await assignPool(ctx, poolId, hostId, res.locals.user, idempotencyKey(req.get("idempotency-key"))));
  });

  router.delete("/:id/hosts/:hostId", async (req, res) => {
    const poolId = parse(poolIdParam, req.params.id, "pool id");
    const hostId = parse(hostIdPathParam, req.params.hostId, "host id");
    sendAccepted(ctx.config, res, await unassignPool(ctx, poolId, hostId, res.locals.user, idempotencyKey(req.get("idempotency-key"))));
  });

  router.get("/:id/files", async (req, res) => {
    const poolId = parse(poolIdParam, req.params.id, "pool id");
    const query = parse(listFilesQuery, req.query, "query");
    res.json({ path: query.path, items: await listPoolFiles(ctx, poolId, query.path) });
  });

  return router;
}
