import { Router } from "express";
import type { ApiContext } from "../use-cases/context";
import {
  attachVolume,
  cloneVolume,
  createVolume,
  deleteVolume,
  detachVolume,
  requireVolume,
  resizeVolume,
  snapshotAction,
} from "../use-cases/volumes";
import { presentSnapshot, presentVolume } from "../presenters";
import { attachVolumeBody, cloneVolumeBody, createSnapshotBody, createVolumeBody, idParam, resizeVolumeBody, snapshotName } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { sendAccepted } from "./accepted";

export function volumeRoutes(ctx: ApiContext): Router {
  const router = Router();
  const key = (req: import("express").Request) => idempotencyKey(req.get("idempotency-key"));
  const volumeIdOf = (req: import("express").Request) => parse(idParam, req.params.id, "volume id");

  router.post("/", async (req, res) => {
    const started = await createVolume(ctx, parse(createVolumeBody, req.body, "body"), res.locals.user, key(req));
    sendAccepted(ctx.config, res, started, { volumeId: started.volumeId, volume: `/v1/volumes/${started.volumeId}` });
  });

  router.get("/", async (_req, res) => {
    const volumes = await ctx.prisma.volume.findMany({ orderBy: { createdAt: "asc" }, include: { snapshots: true } });
    res.json({ items: volumes.map(presentVolume) });
  });

  router.get("/:id", async (req, res) => {
    const volumeId = volumeIdOf(req);
    await requireVolume(ctx, volumeId);
    res.json(presentVolume(await ctx.prisma.volume.findUniqueOrThrow({ where: { id: volumeId }, include: { snapshots: true } })));
  });

  router.delete("/:id", async (req, res) => {
    sendAccepted(ctx.config, res, await deleteVolume(ctx, volumeIdOf(req), res.locals.user, key(req)));
  });

  router.post("/:id/resize", async (req, res) => {
    const { sizeGiB } = parse(resizeVolumeBody, req.body, "body");
    sendAccepted(ctx.config, res, await resizeVolume(ctx, volumeIdOf(req), sizeGiB, res.locals.user, key(req)));
  });

  router.post("/:id/clone", async (req, res) => {
    const started = await cloneVolume(ctx, volumeIdOf(req), parse(cloneVolumeBody, req.body ?? {}, "body"), res.locals.user, key(req));
    sendAccepted(ctx.config, res, started, { volumeId: started.volumeId, volume: `/v1/volumes/${started.volumeId}` });
  });

  router.post("/:id/attach", async (req, res) => {
    const { vmId } = parse(attachVolumeBody, req.body, "body");
    sendAccepted(ctx.config, res, await attachVolume(ctx, volumeIdOf(req), vmId, res.locals.user, key(req)));
  });

  router.post("/:id/detach", async (req, res) => {
    sendAccepted(ctx.config, res, await detachVolume(ctx, volumeIdOf(req), res.locals.user, key(req)));
  });

  router.get("/:id/snapshots", async (req, res) => {
    const volumeId = volumeIdOf(req);
    await requireVolume(ctx, volumeId);
    const snapshots = await ctx.prisma.volumeSnapshot.findMany({ where: { volumeId }, orderBy: { createdAt: "asc" } });
    res.json({ items: snapshots.map(presentSnapshot) });
  });

  router.post("/:id/snapshots", async (req, res) => {
    const { name } = parse(createSnapshotBody, req.body, "body");
    sendAccepted(ctx.config, res, await snapshotAction(ctx, volumeIdOf(req), "create", name, res.locals.user, key(req)));
  });

  router.delete("/:id/snapshots/:name", async (req, res) => {
    const name = parse(snapshotName, req.params.name, "snapshot name");
    sendAccepted(ctx.config, res, await snapshotAction(ctx, volumeIdOf(req), "delete", name, res.locals.user, key(req)));
  });

  router.post("/:id/snapshots/:name/revert", async (req, res) => {
    const name = parse(snapshotName, req.params.name, "snapshot name");
    sendAccepted(ctx.config, res, await snapshotAction(ctx, volumeIdOf(req), "revert", name, res.locals.user, key(req)));
  });

  return router;
}
