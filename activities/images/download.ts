/**
 * Downloads an image into a pool directory on this host: streams it to `.partial-<imageId>`,
 * hashing and checking its format as it arrives, resumes from the last heartbeat after a retry,
 * then verifies and renames it into place (disks in another format than qcow2 are converted).
 *
 * Downloads are limited per host by the worker (maxConcurrentActivityTaskExecutions on a
 * dedicated task queue), not here.
 */
import { Context } from "@temporalio/activity";
import { ApplicationFailure, CancelledFailure } from "@temporalio/common";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { permanentFailure, transientFailure } from "../../common/errors";
import { PROBE_BYTES, type ImageFormat, type ImageKind } from "./content-type";
import { fsyncPath } from "./fsync";
import { DEFAULT_FETCH_POLICY, parseDownloadUrl, type FetchPolicy, type FetchTarget } from "./http-get";
import { imageFiles, removeIntermediateFiles, type ImageFiles } from "./image-files";
import { hashFile, PartialFile, type ChecksumAlgorithm } from "./partial-file";
import { ProgressHeartbeat, resumePointOf } from "./progress";
import { assertSelfContained, convertToQcow2 } from "./qemu-image";
import { assertAbsoluteDir, assertSafeFileName } from "./safe-name";
import { transferInto } from "./transfer";
import { DEFAULT_STALL_POLICY, type StallPolicy } from "./transfer-meter";

export interface ImageChecksum {
  algorithm: ChecksumAlgorithm;
  /** Lower-case hex. */
  value: string;
}

/**
 * Where an image's bytes come from: a URL a user or the catalog named (fetched under the host's
 * fetch policy), or the control plane's staging URL of an upload (trusted configuration; see
 * FetchTarget in http-get.ts).
 */
export type DownloadSource = { kind: "url"; url: string } | { kind: "staged-upload"; url: string };

export interface DownloadImageInput {
  imageId: string;
  source: DownloadSource;
  /** Absolute directory of the pool. */
  targetDir: string;
  expectedChecksum?: ImageChecksum;
  kind: ImageKind;
  /** min(pool free space, configured limit). */
  maxBytes: number;
}

export interface DownloadedImage {
  path: string;
  sizeBytes: number;
  /** Of the bytes fetched from the URL (what catalogs publish), also for a converted disk. */
  checksum: ImageChecksum;
  /** Of the file at `path`: "iso", or "qcow2" for every disk. */
  format: ImageFormat;
  /** As downloaded, before any conversion. */
  sourceFormat: ImageFormat;
}

export interface ImageDownloadDeps {
  /** Heartbeat and sync cadence; the activity's heartbeatTimeout must be several times longer. */
  heartbeatIntervalMs: number;
  /** When a transfer counts as stalled (silent, or below a floor): DOWNLOAD_STALLED. */
  stall: StallPolicy;
  /** qemu-img convert of a multi-GiB raw image can take many minutes on a slow pool. */
  convertTimeoutMs: number;
  userAgent: string;
  /** What user URLs may reach (QX_FETCH_ALLOW and the fixed rules of common/fetch-policy.ts). */
  fetchPolicy: FetchPolicy;
}

const DEFAULT_DEPS: ImageDownloadDeps = {
  heartbeatIntervalMs: 1_000,
  stall: DEFAULT_STALL_POLICY,
  convertTimeoutMs: 2 * 60 * 60_000,
  userAgent: "quantix-orchestrator/image-download",
  fetchPolicy: DEFAULT_FETCH_POLICY,
};

const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { sha256: 64, sha512: 128 };

function validateInput(input: DownloadImageInput): URL {
  assertSafeFileName("imageId", input.imageId);
  assertAbsoluteDir("targetDir", input.targetDir);
  if (input.kind !== "iso" && input.kind !== "disk") throw permanentFailure("VALIDATION_FAILED", `unknown image kind ${JSON.stringify(input.kind)}`);
  if (!Number.isSafeInteger(input.maxBytes) || input.maxBytes <= 0) throw permanentFailure("VALIDATION_FAILED", "maxBytes must be a positive integer");
  const expected = input.expectedChecksum;
  if (expected && !(Object.hasOwn(HEX_LENGTH, expected.algorithm) && new RegExp(`^[0-9a-fA-F]{${HEX_LENGTH[expected.algorithm]}}$`).test(expected.value))) {
    throw permanentFailure("VALIDATION_FAILED", `expectedChecksum is not a hex ${expected.algorithm} digest`);
  }
  if (input.source?.kind !== "url" && input.source?.kind !== "staged-upload") throw permanentFailure("VALIDATION_FAILED", "unknown download source");
  return parseDownloadUrl(input.source.url);
}

async function assertPoolDir(dir: string): Promise<void> {
  const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
  // An unmounted NFS pool comes back: let Temporal retry.
  if (!isDir) throw transientFailure("POOL_UNAVAILABLE", "the pool's images directory is not available on this host");
}

async function statOrNull(path: string) {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return null;
    throw err;
  });
}

interface SourceRecord {
  sourceFormat: ImageFormat;
  checksum: ImageChecksum;
}

async function readSourceRecord(files: ImageFiles): Promise<SourceRecord | null> {
  try {
    return JSON.parse(await readFile(files.sourceRecord, "utf8")) as SourceRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

async function writeSourceRecord(files: ImageFiles, record: SourceRecord): Promise<void> {
  await writeFile(files.sourceRecordTemp, JSON.stringify(record), { flush: true });
  await rename(files.sourceRecordTemp, files.sourceRecord);
}

function sameChecksum(a: ImageChecksum, b: ImageChecksum): boolean {
  return a.algorithm === b.algorithm && a.value.toLowerCase() === b.value.toLowerCase();
}

export function createImageDownloadActivities(overrides: Partial<ImageDownloadDeps> = {}) {
  const deps: ImageDownloadDeps = { ...DEFAULT_DEPS, ...overrides };
  const fetchTarget = (source: DownloadSource): FetchTarget =>
    source.kind === "staged-upload" ? { kind: "control-plane" } : { kind: "policy", policy: deps.fetchPolicy };

  /** The finished image of an earlier attempt or run, if there is one (idempotency). */
  async function findFinished(input: DownloadImageInput, files: ImageFiles, signal: AbortSignal): Promise<DownloadedImage | null> {
    const path = files.final(input.kind);
    const existing = await statOrNull(path);
    if (!existing) return null;
    const format: ImageFormat = input.kind === "iso" ? "iso" : "qcow2";
    const record = input.kind === "disk" ? await readSourceRecord(files) : null;
    const algorithm = input.expectedChecksum?.algorithm ?? "sha256";
    const checksum = record?.checksum ?? { algorithm, value: await hashFile(path, algorithm, signal) };
    if (input.expectedChecksum && !sameChecksum(checksum, input.expectedChecksum)) {
      // Never replaced: VMs may already use it as a backing file.
      throw permanentFailure("CONFLICT", `image ${input.imageId} already exists in the pool with other content`);
    }
    return { path, sizeBytes: existing.size, checksum, format, sourceFormat: record?.sourceFormat ?? format };
  }

  /** Renames the verified partial file into place, converting a non-qcow2 disk first. */
  async function finish(input: DownloadImageInput, files: ImageFiles, format: ImageFormat, checksum: ImageChecksum, progress: ProgressHeartbeat): Promise<DownloadedImage> {
    if (format === "iso" || format === "qcow2") {
      const path = files.final(input.kind);
      await rename(files.partial, path);
      await fsyncPath(input.targetDir);
      return { path, sizeBytes: (await stat(path)).size, checksum, format, sourceFormat: format };
    }
    const source = files.source(format);
    await rename(files.partial, source);
    progress.report({ phase: "converting" });
    await rm(files.converting, { force: true });
    await convertToQcow2(source, format, files.converting, deps.convertTimeoutMs);
    await fsyncPath(files.converting);
    // The record lands before the image, so a qcow2 under the final name always has one.
    await writeSourceRecord(files, { sourceFormat: format, checksum });
    const path = files.final("disk");
    await rename(files.converting, path);
    await fsyncPath(input.targetDir);
    await rm(source, { force: true });
    return { path, sizeBytes: (await stat(path)).size, checksum, format: "qcow2", sourceFormat: format };
  }

  /**
   * What a failure leaves behind. A cancellation the workflow asked for, and every non-retryable
   * failure, remove the partial file; a retryable one keeps it for the next attempt to resume, and
   * so do the other cancellations (heartbeat timeout, worker shutdown, pause): another attempt follows.
   */
  async function settleFailure(err: unknown, context: Context, files: ImageFiles): Promise<unknown> {
    if (context.cancellationSignal.aborted) {
      if (context.cancellationDetails?.cancelRequested) await removeIntermediateFiles(files);
      const reason: unknown = context.cancellationSignal.reason;
      return reason instanceof CancelledFailure ? reason : err;
    }
    if (err instanceof ApplicationFailure) {
      if (err.nonRetryable) await removeIntermediateFiles(files);
      return err;
    }
    const errno = err as NodeJS.ErrnoException;
    if (typeof errno.code === "string" && typeof errno.syscall === "string") {
      return transientFailure("STORAGE_ERROR", `writing the image failed: ${errno.message}`);
    }
    return err;
  }

  async function downloadImage(input: DownloadImageInput): Promise<DownloadedImage> {
    const url = validateInput(input);
    await assertPoolDir(input.targetDir);
    const context = Context.current();
    const signal = context.cancellationSignal;
    const files = imageFiles(input.targetDir, input.imageId);
    const resume = resumePointOf(context.info.heartbeatDetails);
    const progress = new ProgressHeartbeat(context, deps.heartbeatIntervalMs, resume);
    progress.start();
    try {
      const finished = await findFinished(input, files, signal);
      if (finished) {
        await removeIntermediateFiles(files);
        return finished;
      }
      const algorithm = input.expectedChecksum?.algorithm ?? "sha256";
      const file = await PartialFile.open(files.partial, resume?.bytesDone ?? 0, algorithm, PROBE_BYTES[input.kind], signal);
      let format: ImageFormat;
      let checksum: ImageChecksum;
      try {
        format = await transferInto(file, {
          url,
          kind: input.kind,
          maxBytes: input.maxBytes,
          resume,
          signal,
          progress,
          userAgent: deps.userAgent,
          stall: deps.stall,
          target: fetchTarget(input.source),
        });
        checksum = { algorithm, value: await file.digest() };
      } finally {
        await file.close();
      }
      if (input.expectedChecksum && !sameChecksum(checksum, input.expectedChecksum)) {
        throw permanentFailure("CHECKSUM_MISMATCH", `expected ${algorithm} ${input.expectedChecksum.value.toLowerCase()}, got ${checksum.value}`);
      }
      await assertSelfContained(files.partial, format);
      return await finish(input, files, format, checksum, progress);
    } catch (err) {
      throw await settleFailure(err, context, files);
    } finally {
      progress.stop();
    }
  }

  /** Compensation: removes what an unfinished download left; never a finished image. Idempotent. */
  async function removePartialDownload(imageId: string, targetDir: string): Promise<void> {
    assertSafeFileName("imageId", imageId);
    assertAbsoluteDir("targetDir", targetDir);
    const files = imageFiles(targetDir, imageId);
    await removeIntermediateFiles(files);
    if (!(await statOrNull(files.final("disk")))) await rm(files.sourceRecord, { force: true });
  }

  return { downloadImage, removePartialDownload };
}

export type ImageDownloadActivities = ReturnType<typeof createImageDownloadActivities>;
