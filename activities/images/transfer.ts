import type { IncomingMessage } from "node:http";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { permanentFailure, transientFailure } from "../../common/errors";
import { detectFormat, type ImageFormat, type ImageKind } from "./content-type";
import { displayUrl, httpGet, Stalled, type FetchTarget } from "./http-get";
import type { PartialFile } from "./partial-file";
import type { ProgressHeartbeat, ProgressState } from "./progress";
import { TransferMeter, type StallPolicy } from "./transfer-meter";

export interface TransferOptions {
  url: URL;
  kind: ImageKind;
  maxBytes: number;
  /** What the previous attempt heartbeated, or null on a first attempt. */
  resume: ProgressState | null;
  signal: AbortSignal;
  progress: ProgressHeartbeat;
  userAgent: string;
  stall: StallPolicy;
  target: FetchTarget;
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
    httpGet(options.url, { headers, signal: options.signal, idleTimeoutMs: options.stall.idleMs, maxRedirects: MAX_REDIRECTS, target: options.target });
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

/** Makes what arrived durable and heartbeats it, so the retry resumes there; the failure to throw. */
async function brokeOff(file: PartialFile, options: TransferOptions, reason: string) {
  const durable = await file.sync();
  options.progress.report({ bytesDone: durable });
  return transientFailure("DOWNLOAD_FAILED", `download from ${displayUrl(options.url)} broke off after ${durable} bytes: ${reason}`);
}

/**
 * A stalled attempt: what arrived is made durable and heartbeated with the count of stalls so far,
 * so a retry resumes there; past the policy's retries the download fails for good (freeing its slot
 * for downloads that move).
 */
async function stalled(file: PartialFile, options: TransferOptions, reason: string) {
  const durable = await file.sync();
  const stalls = (options.resume?.stalls ?? 0) + 1;
  options.progress.report({ bytesDone: durable, stalls });
  const message = `download from ${displayUrl(options.url)} stalled: ${reason}`;
  if (stalls > options.stall.retries) return permanentFailure("DOWNLOAD_STALLED", `${message} (stalled ${stalls} times)`, { stalls });
  return transientFailure("DOWNLOAD_STALLED", message, { stalls });
}

/**
 * Receives the body into `file` through a stream pipeline ("data" events: no promise per chunk),
 * checking the size as bytes arrive and calling `onAppended` after each chunk (the content check).
 * Every heartbeat interval, also while the server is silent, the bytes received so far are synced
 * in the background and their count heartbeated:
 * the transfer never pauses for an fsync, and a worker lost during a stall resumes after the
 * bytes of the burst before it. The same tick watches for a stall (TransferMeter: silent, or below
 * the floor). A failure of the file or of a check is rethrown; one of the connection syncs and
 * heartbeats what arrived before failing retryably.
 */
async function receiveBody(response: IncomingMessage, file: PartialFile, options: TransferOptions, onAppended: () => void): Promise<void> {
  const { progress, signal } = options;
  let fileFailure: unknown;
  /** Receiving waits for the file (all ring slots busy): a slow disk is not a stalled server. */
  let waitingForFile = false;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      let waitForSlot: Promise<void> | undefined;
      try {
        if (file.size + chunk.length > options.maxBytes) throw tooLarge(file.size + chunk.length, options.maxBytes);
        waitForSlot = file.append(chunk);
        onAppended();
      } catch (err) {
        fileFailure = err;
        return callback(err as Error);
      }
      if (!waitForSlot) return callback();
      waitingForFile = true;
      waitForSlot.finally(() => (waitingForFile = false)).then(
        () => callback(),
        (err: Error) => {
          fileFailure = err;
          callback(err);
        },
      );
    },
  });
  let syncing: Promise<void> | undefined;
  let reported = file.size;
  const syncInBackground = () => {
    syncing ??= file
      .sync()
      .then(
        (durable) => {
          reported = durable;
          progress.report({ bytesDone: durable });
        },
        (err: Error) => {
          fileFailure = err;
          sink.destroy(err);
        },
      )
      .finally(() => {
        syncing = undefined;
      });
  };
  const meter = new TransferMeter(options.stall, file.size);
  const timer = setInterval(() => {
    if (file.size > reported) syncInBackground();
    if (waitingForFile) meter.excuse();
    else meter.observe(file.size);
    const reason = meter.stallReason();
    if (reason) response.destroy(new Stalled(reason));
  }, progress.intervalMs);
  let failure: unknown;
  try {
    await pipeline(response, sink);
  } catch (err) {
    failure = err;
  } finally {
    clearInterval(timer);
    await syncing;
  }
  if (failure === undefined) return;
  if (signal.aborted) throw signal.reason;
  if (failure === fileFailure) throw failure;
  if (failure instanceof Stalled) throw await stalled(file, options, failure.message);
  throw await brokeOff(file, options, (failure as Error).message);
}

/**
 * Streams the image into `file` (appending after what a previous attempt left), checking its
 * format as soon as the probe bytes are in and its size against maxBytes, syncing and
 * heartbeating the durable offset as it goes. A broken transfer syncs and heartbeats its offset
 * before failing retryably, so the next attempt resumes exactly there. Returns the format.
 */
export async function transferInto(file: PartialFile, options: TransferOptions): Promise<ImageFormat> {
  const { progress } = options;
  // A resumed file already holds its first bytes: a wrong one fails before any request.
  let format = file.headComplete() ? detectFormat(options.kind, file.head()) : undefined;
  let total = options.resume?.bytesTotal ?? null;
  const everythingOnDisk = file.size > 0 && file.size === total;
  if (!everythingOnDisk) {
    const response = await openResponse(file, options).catch(async (err: unknown) => {
      throw err instanceof Stalled ? await stalled(file, options, `no response: ${err.message}`) : err;
    });
    if (file.size === 0) format = undefined; // started over: judge the new bytes
    total = totalOf(response);
    if (total !== null && total > options.maxBytes) {
      response.destroy();
      throw tooLarge(total, options.maxBytes);
    }
    // A 206 continues the file the previous attempt validated; a 200 brings its own validator or none.
    const validator = validatorOf(response) ?? (file.size > 0 ? options.resume?.validator : undefined);
    progress.report({ phase: "downloading", bytesDone: file.size, bytesTotal: total, validator });
    await receiveBody(response, file, options, () => {
      if (format === undefined && file.headComplete()) format = detectFormat(options.kind, file.head());
    });
    if (total !== null && file.size !== total) throw await brokeOff(file, options, `the body ended before its announced ${total} bytes`);
  }
  const durable = await file.sync();
  progress.report({ phase: "verifying", bytesDone: durable, bytesTotal: durable });
  return format ?? detectFormat(options.kind, file.head());
}
