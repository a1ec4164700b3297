import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { Image, Prisma } from "@prisma/client";
import type { DownloadProgress } from "../../activities/images/progress";
import { DEFAULT_MAX_IMAGE_BYTES } from "../../common/config";
import { parseFetchAllowList, refusedBeforeResolving } from "../../common/fetch-policy";
import { sealUrlSecrets, splitUrl, type UrlSecrets } from "../../common/sealed-url";
import { loadImageCatalog, type ImageCatalogEntry } from "../../common/image-catalog";
import { HOST_ID } from "../../common/search-attributes";
import type { DeleteImageInput } from "../../workflows/delete-image";
import type { DownloadImageInput } from "../../workflows/download-image";
import type { CreateImageBody } from "../image-schemas";
import { ApiError } from "../problem";
import { hostTimeouts, type ApiContext } from "./context";
import { claimHeld, claimUpload, discardStagedUpload, stageUpload, stagedUploadUrl } from "./image-uploads";
import { startOperation, type StartedOperation } from "./start-operation";

const ACTIVE_OPERATION_STATES = ["PENDING", "RUNNING", "COMPENSATING"] as const;

const maxImageBytes = (ctx: ApiContext) => ctx.config.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES;

export function imageCatalog(ctx: ApiContext): Promise<ImageCatalogEntry[]> {
  return loadImageCatalog(ctx.config.imageCatalogFile);
}

export async function requireImage(ctx: ApiContext, imageId: string): Promise<Image> {
  const image = await ctx.prisma.image.findUnique({ where: { id: imageId } });
  if (!image) throw new ApiError("NOT_FOUND", `image ${imageId} does not exist`);
  return image;
}

/** Images are files in a directory pool (for now a host's local pool). */
async function requireImagePool(tx: Prisma.TransactionClient, poolId: string): Promise<void> {
  const pool = await tx.storagePool.findUnique({ where: { id: poolId } });
  if (!pool) throw new ApiError("VALIDATION_FAILED", `pool ${poolId} does not exist`);
  if (pool.kind !== "dir") throw new ApiError("VALIDATION_FAILED", `pool ${poolId} is ${pool.kind}; images need a directory pool`);
}

/** What of the image's URLs must stay hidden, by URL: sealed into ImageSourceSecret (see prisma/schema.prisma). */
interface SourceSecrets {
  source?: UrlSecrets;
  checksumFile?: UrlSecrets;
}

/** A URL's public part for the row, its secrets (if any) kept aside in `secrets[as]`. */
function keptApart(raw: string, secrets: SourceSecrets, as: keyof SourceSecrets): string {
  const split = splitUrl(raw);
  if (Object.keys(split.secrets).length > 0) secrets[as] = split.secrets;
  return split.url;
}

/** The new image's row (id chosen here, before any side effect) from what the request names, its URLs' secrets apart. */
async function imageRow(ctx: ApiContext, imageId: string, body: CreateImageBody): Promise<{ row: Prisma.ImageUncheckedCreateInput; secrets: SourceSecrets }> {
  const base = { id: imageId, poolId: body.poolId, status: "PENDING" as const };
  const secrets: SourceSecrets = {};
  if (body.source === "catalog") {
    const entry = (await imageCatalog(ctx)).find((e) => e.id === body.catalogId);
    if (!entry) throw new ApiError("VALIDATION_FAILED", `the catalog has no image ${body.catalogId}`);
    refuseUnreachable(ctx, entry.url);
    const row = {
      ...base,
      name: body.name ?? entry.name,
      kind: entry.kind,
      catalogId: entry.id,
      sourceUrl: keptApart(entry.url, secrets, "source"),
      osFamily: entry.os.family,
      osDistribution: entry.os.distribution,
      osVersion: entry.os.version,
      checksumAlgorithm: entry.checksum?.algorithm ?? entry.checksumFile?.algorithm ?? null,
      checksumValue: entry.checksum?.value ?? null,
      checksumFileUrl: entry.checksumFile ? keptApart(entry.checksumFile.url, secrets, "checksumFile") : null,
    };
    return { row, secrets };
  }
  if (body.source === "url") refuseUnreachable(ctx, body.url);
  const row = {
    ...base,
    name: body.name,
    kind: body.kind,
    sourceUrl: body.source === "url" ? keptApart(body.url, secrets, "source") : null,
    osFamily: body.os?.family ?? null,
    osDistribution: body.os?.distribution ?? null,
    osVersion: body.os?.version ?? null,
    checksumAlgorithm: body.checksum?.algorithm ?? null,
    checksumValue: body.checksum?.value.toLowerCase() ?? null,
  };
  return { row, secrets };
}

/** Seals what must stay hidden (userinfo, query, token) under the control plane's key, beside the image. */
async function keepSourceSecrets(tx: Prisma.TransactionClient, ctx: ApiContext, imageId: string, secrets: SourceSecrets): Promise<void> {
  const values = Object.fromEntries(Object.entries(secrets).map(([name, parts]) => [name, sealUrlSecrets(parts as UrlSecrets, ctx.secretsKey)]));
  if (Object.keys(values).length === 0) return;
  await tx.imageSourceSecret.upsert({ where: { imageId }, create: { imageId, values }, update: { values } });
}

/**
 * A URL whose host is an address the fetch policy refuses whatever DNS says (a literal loopback,
 * link-local or unlisted private address, `localhost`) is refused before anything is recorded. A
 * name is judged by the host that downloads, after it resolves it, and again at every redirect.
 */
function refuseUnreachable(ctx: ApiContext, url: string): void {
  if (refusedBeforeResolving(new URL(url), parseFetchAllowList(ctx.config.fetchAllow))) {
    throw new ApiError("URL_NOT_ALLOWED", `${new URL(url).hostname} is not an address downloads may reach (loopback, link-local, multicast and private addresses are refused unless QX_FETCH_ALLOW lists them)`);
  }
}

/**
 * Starts downloadImage. Its input names the image only: the workflow reads the source by reference
 * (activities/database/images.ts), sealed, so no URL credential or upload token is ever a workflow
 * input, and the request as the operation records it (`recordedInput`) holds none either.
 */
function startDownload(
  ctx: ApiContext,
  request: { imageId: string; name: string; user: string; idempotencyKey?: string; requestBody: unknown; recordedInput: unknown },
  inTransaction: (tx: Prisma.TransactionClient) => Promise<void>,
): Promise<StartedOperation> {
  return startOperation(ctx, {
    type: "download-image",
    targetType: "image",
    targetId: request.imageId,
    requestedBy: request.user,
    idempotencyKey: request.idempotencyKey,
    requestBody: request.requestBody,
    recordedInput: request.recordedInput,
    workflowType: "downloadImage",
    workflowArgs: (operationId): [DownloadImageInput] => [{ operationId, imageId: request.imageId, maxBytes: maxImageBytes(ctx), timeouts: hostTimeouts(ctx) }],
    summary: `Download image ${request.name}`,
    searchAttributes: [],
    inTransaction,
  });
}

export type CreatedImage = { imageId: string } & ({ started: StartedOperation } | { image: Image });

/**
 * A catalog or URL image: its row and the downloadImage operation, committed together. An upload:
 * only the row (PENDING), the operation starts when its content arrives.
 */
export async function createImage(ctx: ApiContext, body: CreateImageBody, user: string, idempotencyKey?: string): Promise<CreatedImage> {
  const imageId = randomUUID();
  const { row, secrets } = await imageRow(ctx, imageId, body);
  if (body.source === "upload") {
    const image = await ctx.prisma.$transaction(async (tx) => {
      await requireImagePool(tx, body.poolId);
      return tx.image.create({ data: row });
    });
    return { imageId, image };
  }
  // The operation keeps the URL's public part and the names of what was kept apart.
  const recordedInput = body.source === "url" ? { ...body, url: row.sourceUrl, ...(secrets.source ? { urlSecrets: Object.keys(secrets.source) } : {}) } : body;
  const started = await startDownload(ctx, { imageId, name: row.name, user, idempotencyKey, requestBody: body, recordedInput }, async (tx) => {
    await requireImagePool(tx, body.poolId);
    await tx.image.create({ data: row });
    await keepSourceSecrets(tx, ctx, imageId, secrets);
  });
  return { imageId: started.operation.targetId, started };
}

/**
 * PUT /v1/images/:id/content: claims the image (one upload per image, else 409 at once), stages the
 * body, then records the download from the API's staging URL — if the claim still holds (else 409
 * at the end, and nothing of this upload is left).
 */
export async function uploadImageContent(ctx: ApiContext, imageId: string, body: Readable, declaredLength: number | null, user: string): Promise<StartedOperation> {
  const image = await requireImage(ctx, imageId);
  if (image.sourceUrl !== null || image.status !== "PENDING") {
    throw new ApiError("CONFLICT", `image ${imageId} is ${image.status}${image.sourceUrl ? ", downloaded from a URL" : ""}; content can be sent once, to a new upload image`);
  }
  const claim = await claimUpload(ctx, imageId);
  try {
    // Whatever an upload that died under a lapsed claim staged is of no use to anyone now.
    await discardStagedUpload(ctx, imageId);
    const { token, hash } = await stageUpload(ctx, imageId, body, declaredLength, maxImageBytes(ctx));
    claim.end();
    const request = { imageId, name: image.name, user, requestBody: { upload: imageId }, recordedInput: { upload: imageId } };
    return await startDownload(ctx, request, async (tx) => {
      const stillOurs = await tx.image.updateMany({
        where: { id: imageId, status: "PENDING", uploadClaim: claim.id },
        data: { uploadTokenHash: hash, uploadUrl: stagedUploadUrl(ctx, imageId), uploadClaim: null, uploadClaimedAt: null },
      });
      if (stillOurs.count === 0) throw new ApiError("CONFLICT", `another upload of image ${imageId} took over while this one was sent; this one is dropped`);
      await keepSourceSecrets(tx, ctx, imageId, { source: { query: `token=${encodeURIComponent(token)}` } });
    });
  } catch (err) {
    // Only this upload's own file: a claim that is still ours means no other upload staged one.
    if (await claimHeld(ctx, imageId, claim.id)) await discardStagedUpload(ctx, imageId);
    await claim.release();
    throw err;
  }
}

/** Refused while a VM boots from the image (the workflow checks again, under a lock). */
export async function deleteImage(ctx: ApiContext, imageId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const image = await requireImage(ctx, imageId);
  const users = await ctx.prisma.vm.count({ where: { OR: [{ imageId }, ...(image.path ? [{ poolId: image.poolId, baseImage: image.path }] : [])] } });
  if (users > 0) throw new ApiError("IMAGE_IN_USE", `image ${imageId} is used by ${users} VM(s); delete them first`);
  const started = await startOperation(ctx, {
    type: "delete-image",
    targetType: "image",
    targetId: imageId,
    requestedBy: user,
    idempotencyKey,
    requestBody: {},
    workflowType: "deleteImage",
    workflowArgs: (operationId): [DeleteImageInput] => [{ operationId, imageId, timeouts: hostTimeouts(ctx) }],
    summary: `Delete image ${image.name}`,
    searchAttributes: image.hostId ? [{ key: HOST_ID, value: image.hostId }] : [],
  });
  // An upload never fetched leaves its staged file: nothing can fetch it any more.
  await discardStagedUpload(ctx, imageId);
  return started;
}

/**
 * Live progress of a running download: the last heartbeat of the workflow's pending download
 * activity, as the Temporal server holds it (the database holds no per-tick progress).
 */
export async function liveDownloadProgress(ctx: ApiContext, imageId: string): Promise<DownloadProgress | null> {
  const operation = await ctx.prisma.operation.findFirst({
    where: { targetType: "image", targetId: imageId, type: "download-image", state: { in: [...ACTIVE_OPERATION_STATES] } },
  });
  if (!operation) return null;
  try {
    const description = await ctx.temporal.workflow.getHandle(operation.workflowId).describe();
    const download = description.raw.pendingActivities?.find((a) => a.activityType?.name === "downloadImageToPool");
    const payload = download?.heartbeatDetails?.payloads?.[0];
    return payload ? (ctx.temporal.options.loadedDataConverter.payloadConverter.fromPayload(payload) as DownloadProgress) : null;
  } catch {
    // Progress is a nicety: a workflow that just ended or a Temporal hiccup must not fail the read.
    return null;
  }
}
