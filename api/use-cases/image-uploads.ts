/**
 * Uploads: the API cannot write to a host's disk, and hosts take no inbound connections. So the API
 * streams the request body to a staging file (never the whole body in memory, the size limit
 * enforced as bytes arrive), then starts the same downloadImage workflow with a URL back to itself
 * carrying a one-time token: the host fetches the staged file like any download, with the same
 * checks (content type, checksum, size) and the same resume after a crash (Range requests).
 *
 * One upload per image: a PUT first claims the image (a conditional update: PENDING, no content yet,
 * no live claim), so a second PUT is 409 at its start; when its bytes are in, the claim is checked
 * again in the transaction that records the operation, so one that slipped in (a claim that lapsed
 * while its API was dead) is 409 at its end and touches nothing. A staged file lives until its
 * image is READY or FAILED: the API's sweeper (startStagingSweeper) removes it then.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { createWriteStream } from "node:fs";
import { link, mkdir, readdir, rm, stat } from "node:fs/promises";
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
const PARTIAL_SUFFIX = ".partial";

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
 * Refuses a declared length over `limit` before reading. The caller holds the image's upload
 * claim; the file is linked into place only if none is there (a second line of defence: 409).
 */
export async function stageUpload(ctx: ApiContext, imageId: string, body: Readable, declaredLength: number | null, limit: number): Promise<{ token: string; hash: string }> {
  if (declaredLength !== null && declaredLength > limit) throw new ApiError("PAYLOAD_TOO_LARGE", `the upload has ${declaredLength} bytes; at most ${limit} are accepted`);
  await mkdir(stagingDir(ctx), { recursive: true, mode: 0o700 });
  const temp = path.join(stagingDir(ctx), `.${imageId}.${randomBytes(6).toString("hex")}${PARTIAL_SUFFIX}`);
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

/** A claim unrenewed this long belongs to an API that died mid-upload: another PUT may take over. */
const CLAIM_LEASE_MS = 60_000;

export interface UploadClaim {
  id: string;
  /** Stops renewing and gives the image back to the next PUT (the upload failed or was refused). */
  release(): Promise<void>;
  /** Stops renewing; the claim is consumed by the transaction that records the operation. */
  end(): void;
}

/** Claims the image for this PUT, or 409: it is not an upload waiting for its content, or another PUT holds it. */
export async function claimUpload(ctx: ApiContext, imageId: string): Promise<UploadClaim> {
  const id = randomUUID();
  const claimed = await ctx.prisma.image.updateMany({
    where: {
      id: imageId,
      status: "PENDING",
      sourceUrl: null,
      uploadTokenHash: null,
      OR: [{ uploadClaim: null }, { uploadClaimedAt: { lt: new Date(Date.now() - CLAIM_LEASE_MS) } }],
    },
    data: { uploadClaim: id, uploadClaimedAt: new Date() },
  });
  if (claimed.count === 0) throw new ApiError("CONFLICT", `image ${imageId} takes one upload: another is under way, or its content was sent already`);
  const renew = setInterval(() => {
    ctx.prisma.image.updateMany({ where: { id: imageId, uploadClaim: id }, data: { uploadClaimedAt: new Date() } }).catch((err: unknown) => {
      console.error(`[api] renewing the upload claim of image ${imageId} failed:`, err);
    });
  }, CLAIM_LEASE_MS / 4);
  return {
    id,
    end: () => clearInterval(renew),
    async release() {
      clearInterval(renew);
      await ctx.prisma.image.updateMany({ where: { id: imageId, uploadClaim: id }, data: { uploadClaim: null, uploadClaimedAt: null } });
    },
  };
}

export async function claimHeld(ctx: ApiContext, imageId: string, claimId: string): Promise<boolean> {
  return (await ctx.prisma.image.count({ where: { id: imageId, uploadClaim: claimId } })) > 0;
}

/**
 * Removes staged files whose image no longer waits for its host to fetch them (READY, FAILED,
 * deleted), and the partial files of uploads whose API died (untouched for a lease).
 */
export async function sweepStagedUploads(ctx: ApiContext): Promise<void> {
  const dir = stagingDir(ctx);
  const names = await readdir(dir).catch(() => [] as string[]);
  const ids = names.filter((n) => n.endsWith(STAGED_SUFFIX)).map((n) => n.slice(0, -STAGED_SUFFIX.length));
  if (ids.length > 0) {
    const waiting = await ctx.prisma.image.findMany({ where: { id: { in: ids }, status: { in: ["PENDING", "DOWNLOADING"] } }, select: { id: true } });
    const keep = new Set(waiting.map((i) => i.id));
    await Promise.all(ids.filter((id) => !keep.has(id)).map((id) => discardStagedUpload(ctx, id)));
  }
  const abandoned = async (name: string) => {
    const file = path.join(dir, name);
    const modified = await stat(file).then((s) => s.mtimeMs, () => Date.now());
    if (Date.now() - modified > CLAIM_LEASE_MS) await rm(file, { force: true });
  };
  await Promise.all(names.filter((n) => n.startsWith(".") && n.endsWith(PARTIAL_SUFFIX)).map(abandoned));
}

/**
 * Sweeps the staging directory every interval (QX_STAGING_SWEEP_INTERVAL_MS): a staged file goes
 * within one interval of its image turning READY or FAILED. The API runs it: staging is its own
 * directory, which the control-plane worker (maybe on another machine) never sees.
 */
export function startStagingSweeper(ctx: ApiContext, intervalMs: number): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() => sweepStagedUploads(ctx)).catch((err: unknown) => console.error("[api] sweeping staged uploads failed:", err));
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
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
