import type { IncomingMessage } from "node:http";
import { permanentFailure, transientFailure } from "../../common/errors";
import { detectFormat, type ImageFormat, type ImageKind } from "./content-type";
import { displayUrl, httpGet } from "./http-get";
import type { PartialFile } from "./partial-file";
import type { ProgressHeartbeat, ProgressState } from "./progress";

export interface TransferOptions {
  url: URL;
  kind: ImageKind;
  maxBytes: number;
  /** What the previous attempt heartbeated, or null on a first attempt. */
  resume: ProgressState | null;
  signal: AbortSignal;
  progress: ProgressHeartbeat;
  userAgent: string;
  idleTimeoutMs: number;
}

const MAX_REDIRECTS = 5;
const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

function tooLarge(bytes: number, maxBytes: number) {
  return permanentFailure("CONTENT_TOO_LARGE", `the image has ${bytes} bytes or more; at most ${maxBytes} fit`, { bytes, maxBytes });
}

function rangeOf(response: IncomingMessage): { start: number; total: number | null } | null {
  const match = CONTENT_RANGE.exec(response.headers["content-range"] ?? "");
  if (!match) return null;
  return { start: Number(match[1]), total: match[3] === "*" ? null : Number(match[3]) };
}

function totalOf(response: IncomingMessage): number | null {
  if (response.statusCode === 206) return rangeOf(response)?.total ?? null;
  const length = response.headers["content-length"];
  return length !== undefined && /^\d+$/.test(length) ? Number(length) : null;
}

/** A strong validator for If-Range (weak ETags are not allowed there). */
function validatorOf(response: IncomingMessage): string | undefined {
  const etag = response.headers.etag;
  if (etag && !etag.startsWith("W/")) return etag;
  return response.headers["last-modified"];
}

function assertStatus(response: IncomingMessage, expected: number, url: URL): void {
  const status = response.statusCode ?? 0;
  if (status === expected) return;
  response.destroy();
  const what = `GET ${displayUrl(url)} answered ${status}`;
  // 408 and 429 are the server asking to come back later, like a 5xx.
  if (status === 408 || status === 429 || status >= 500) throw transientFailure("DOWNLOAD_FAILED", what, { status });
  throw permanentFailure("DOWNLOAD_FAILED", what, { status });
}

/**
 * Requests the rest of the file. A server that ignores the Range (200) or whose file changed
 * (If-Range mismatch, also 200) sends it whole, and the partial file starts over; one answering
 * a range other than the one asked for, or 416, is asked again for the whole file.
 */
async function openResponse(file: PartialFile, options: TransferOptions) {
  const baseHeaders = { "user-agent": options.userAgent, "accept-encoding": "identity" };
  const get = (headers: Record<string, string>) =>
    httpGet(options.url, { headers, signal: options.signal, idleTimeoutMs: options.idleTimeoutMs, maxRedirects: MAX_REDIRECTS });
  const resumeFrom = file.size;
  if (resumeFrom === 0) {
    const { response, url } = await get(baseHeaders);
    assertStatus(response, 200, url);
    return response;
  }
  const validator = options.resume?.validator;
  let { response, url } = await get({ ...baseHeaders, range: `bytes=${resumeFrom}-`, ...(validator ? { "if-range": validator } : {}) });
  if (response.statusCode === 206 && rangeOf(response)?.start === resumeFrom) return response;
  if (response.statusCode === 206 || response.statusCode === 416) {
    response.destroy();
    ({ response, url } = await get(baseHeaders));
  }
  assertStatus(response, 200, url);
  await file.restart();
  return response;
}

/**
 * The next chunk of the body. While the server is silent, `onIdle` runs every `idleMs`: the bytes of
 * a burst that arrived just before a stall get synced and heartbeated, so a worker lost during the
 * stall resumes after them rather than fetching them again.
 */
async function nextChunk(chunks: AsyncIterator<Buffer>, idleMs: number, onIdle: () => Promise<void>): Promise<IteratorResult<Buffer>> {
  const pending = chunks.next();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<"idle">((resolve) => {
      timer = setTimeout(() => resolve("idle"), idleMs);
    });
    const result = await Promise.race([pending, idle]).finally(() => clearTimeout(timer));
    if (result !== "idle") return result;
    await onIdle();
  }
}

/**
 * Streams the image into `file` (appending after what a previous attempt left), checking its
 * format as soon as the probe bytes are in and its size against maxBytes, syncing and
 * heartbeating the durable offset as it goes. A broken transfer syncs and heartbeats its offset
 * before failing retryably, so the next attempt resumes exactly there. Returns the format.
 */
export async function transferInto(file: PartialFile, options: TransferOptions): Promise<ImageFormat> {
  const { progress, signal } = options;
  // A resumed file already holds its first bytes: a wrong one fails before any request.
  let format = file.headComplete() ? detectFormat(options.kind, file.head()) : undefined;
  let total = options.resume?.bytesTotal ?? null;
  const everythingOnDisk = file.size > 0 && file.size === total;
  if (!everythingOnDisk) {
    const response = await openResponse(file, options);
    if (file.size === 0) format = undefined; // started over: judge the new bytes
    total = totalOf(response);
    if (total !== null && total > options.maxBytes) {
      response.destroy();
      throw tooLarge(total, options.maxBytes);
    }
    // A 206 continues the file the previous attempt validated; a 200 brings its own validator or none.
    const validator = validatorOf(response) ?? (file.size > 0 ? options.resume?.validator : undefined);
    progress.report({ phase: "downloading", bytesDone: file.size, bytesTotal: total, validator });
    const brokeOff = async (reason: string) => {
      if (signal.aborted) return signal.reason as Error;
      await file.sync();
      progress.report({ bytesDone: file.size });
      return transientFailure("DOWNLOAD_FAILED", `download from ${displayUrl(options.url)} broke off after ${file.size} bytes: ${reason}`);
    };
    const chunks = response[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let synced = file.size;
    const syncAndReport = async () => {
      await file.sync();
      synced = file.size;
      progress.report({ bytesDone: file.size });
    };
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await nextChunk(chunks, progress.intervalMs, async () => {
            if (file.size > synced) await syncAndReport();
          });
        } catch (err) {
          throw await brokeOff((err as Error).message);
        }
        if (next.done) break;
        if (file.size + next.value.length > options.maxBytes) throw tooLarge(file.size + next.value.length, options.maxBytes);
        await file.append(next.value);
        if (format === undefined && file.headComplete()) format = detectFormat(options.kind, file.head());
        if (progress.due()) await syncAndReport();
      }
    } finally {
      response.destroy();
    }
    if (total !== null && file.size !== total) throw await brokeOff(`the body ended before its announced ${total} bytes`);
  }
  await file.sync();
  progress.report({ phase: "verifying", bytesDone: file.size, bytesTotal: file.size });
  return format ?? detectFormat(options.kind, file.head());
}
