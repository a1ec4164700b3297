/**
 * Uploads: the API cannot write to a host's disk, and hosts take no inbound connections. So the API
 * streams the request body to a staging file (never the whole body in memory, the size limit
 * enforced as bytes arrive), then starts the same downloadImage workflow with a URL back to itself
 * carrying a one-time token: the host fetches the staged file like any download, with the same
 * checks (content type, checksum, size) and the same resume after a crash (Range requests).
 * A staged file lives until its image is READY or FAILED; staging sweeps away older ones.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createWriteStream } from "node:fs";
import { link, mkdir, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Request, Response } from "express";
import { ApiError } from "../problem";
import { idParam } from "../schemas";
import { parse } from "../validate";
import type { ApiContext } from "./context";

const STAGED_SUFFIX = ".upload";

export function stagingDir(ctx: ApiContext): string {
  return ctx.config.imageStagingDir ?? path.join(os.tmpdir(), "quantix-image-uploads");
}

function stagedPath(ctx: ApiContext, imageId: string): string {
  return path.join(stagingDir(ctx), `${imageId}${STAGED_SUFFIX}`);
}

const tokenHash = (token: string) => createHash("sha256").update(token).digest("hex");

/** Fails the stream once more than `limit` bytes went through. */
function byteLimit(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) return done(new ApiError("PAYLOAD_TOO_LARGE", `the upload is larger than ${limit} bytes`));
      done(null, chunk);
    },
  });
}

/**
 * Streams `body` to the image's staging file and returns the token that lets a host fetch it.
 * Refuses a declared length over `limit` before reading; a second upload of the same image while
 * one is staged gets 409 (the file is linked into place only if none is there).
 */
export async function stageUpload(ctx: ApiContext, imageId: string, body: Readable, declaredLength: number | null, limit: number): Promise<{ token: string; hash: string }> {
  if (declaredLength !== null && declaredLength > limit) throw new ApiError("PAYLOAD_TOO_LARGE", `the upload has ${declaredLength} bytes; at most ${limit} are accepted`);
  await mkdir(stagingDir(ctx), { recursive: true, mode: 0o700 });
  const temp = path.join(stagingDir(ctx), `.${imageId}.${randomBytes(6).toString("hex")}.partial`);
  try {
    await pipeline(body, byteLimit(limit), createWriteStream(temp, { mode: 0o600 }));
    await link(temp, stagedPath(ctx, imageId));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new ApiError("CONFLICT", `an upload of image ${imageId} is already staged`);
    throw err;
  } finally {
    await rm(temp, { force: true });
  }
  const token = randomBytes(32).toString("base64url");
  return { token, hash: tokenHash(token) };
}

/** Where a host fetches the staged file, without the token (which is sealed apart, as URL secrets are). */
export function stagedUploadUrl(ctx: ApiContext, imageId: string): string {
  return `${ctx.publicUrl}/internal/image-uploads/${encodeURIComponent(imageId)}`;
}

export async function discardStagedUpload(ctx: ApiContext, imageId: string): Promise<void> {
  await rm(stagedPath(ctx, imageId), { force: true });
}

/** Removes staged files whose image is no longer waiting for its host to fetch them. */
export async function sweepStagedUploads(ctx: ApiContext): Promise<void> {
  const names = await readdir(stagingDir(ctx)).catch(() => [] as string[]);
  const ids = names.filter((n) => n.endsWith(STAGED_SUFFIX)).map((n) => n.slice(0, -STAGED_SUFFIX.length));
  if (ids.length === 0) return;
  const waiting = await ctx.prisma.image.findMany({ where: { id: { in: ids }, status: { in: ["PENDING", "DOWNLOADING"] } }, select: { id: true } });
  const keep = new Set(waiting.map((i) => i.id));
  await Promise.all(ids.filter((id) => !keep.has(id)).map((id) => discardStagedUpload(ctx, id)));
}

/**
 * GET /internal/image-uploads/:id?token=... — what the host's download activity fetches. No bearer
 * token (hosts hold no API credentials): the one-time token, compared in constant time, authorises
 * this one file while its download runs. Range and If-Range are served, so a retried attempt resumes.
 */
export async function serveStagedUpload(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const imageId = parse(idParam, req.params.id, "image id");
  const presented = typeof req.query.token === "string" ? tokenHash(req.query.token) : "";
  const image = await ctx.prisma.image.findUnique({ where: { id: imageId }, select: { status: true, uploadTokenHash: true } });
  const expected = image?.status === "DOWNLOADING" ? image.uploadTokenHash : null;
  if (!expected || presented.length !== expected.length || !timingSafeEqual(Buffer.from(presented), Buffer.from(expected))) {
    throw new ApiError("NOT_FOUND", "no such staged upload");
  }
  await new Promise<void>((resolve, reject) =>
    res.sendFile(stagedPath(ctx, imageId), { dotfiles: "allow", acceptRanges: true, cacheControl: false }, (err) => (err && !res.headersSent ? reject(err) : resolve())),
  );
}
