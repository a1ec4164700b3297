import { Router, type Response } from "express";
import type { ApiContext } from "../use-cases/context";
import { createImage, deleteImage, imageCatalog, liveDownloadProgress, requireImage, uploadImageContent } from "../use-cases/images";
import type { StartedOperation } from "../use-cases/start-operation";
import { presentImage } from "../image-presenter";
import { createImageBody } from "../image-schemas";
import { idParam } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { ApiError } from "../problem";
import { sendAccepted } from "./accepted";

function accepted(ctx: ApiContext, res: Response, started: StartedOperation, imageId: string): void {
  sendAccepted(ctx.config, res, started, { imageId, image: `/v1/images/${imageId}` });
}

export function imageRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.get("/catalog", async (_req, res) => {
    res.json({ items: await imageCatalog(ctx) });
  });

  /** 202 + operation for a catalog or URL image; 201 + the image for an upload (PUT its content next). */
  router.post("/", async (req, res) => {
    const body = parse(createImageBody, req.body, "body");
    const created = await createImage(ctx, body, res.locals.user, idempotencyKey(req.get("idempotency-key")));
    if ("image" in created) {
      res.status(201).location(`/v1/images/${created.imageId}`).json(presentImage(created.image));
      return;
    }
    accepted(ctx, res, created.started, created.imageId);
  });

  router.get("/", async (_req, res) => {
    const images = await ctx.prisma.image.findMany({ orderBy: { createdAt: "asc" } });
    res.json({ items: images.map((image) => presentImage(image)) });
  });

  router.get("/:id", async (req, res) => {
    const image = await requireImage(ctx, parse(idParam, req.params.id, "image id"));
    const live = image.status === "DOWNLOADING" ? await liveDownloadProgress(ctx, image.id) : null;
    res.json(presentImage(image, live));
  });

  router.delete("/:id", async (req, res) => {
    const imageId = parse(idParam, req.params.id, "image id");
    accepted(ctx, res, await deleteImage(ctx, imageId, res.locals.user, idempotencyKey(req.get("idempotency-key"))), imageId);
  });

  return router;
}

/** PUT /v1/images/:id/content: mounted before the JSON body parser, which must not touch the stream. */
export function imageContentRoute(ctx: ApiContext): Router {
  const router = Router();
  router.put("/images/:id/content", async (req, res) => {
    const imageId = parse(idParam, req.params.id, "image id");
    const length = req.get("content-length");
    if (length !== undefined && !/^\d+$/.test(length)) throw new ApiError("VALIDATION_FAILED", "Content-Length must be a number");
    const started = await uploadImageContent(ctx, imageId, req, length === undefined ? null : Number(length), res.locals.user);
    accepted(ctx, res, started, imageId);
  });
  return router;
}
