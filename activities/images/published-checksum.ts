/**
 * Reads an image's digest from the sums file its publisher puts beside it (catalog entries name
 * that file, not a digest: "latest" images are rebuilt and their digests change). Understands the
 * GNU `sha256sum` style (`<hex>  name` or `<hex> *name`) and the BSD style (`SHA256 (name) = <hex>`),
 * which covers Debian, Ubuntu, Fedora, Rocky and Alpine; signature armour lines are skipped.
 */
import { Context } from "@temporalio/activity";
import { permanentFailure, transientFailure } from "../../common/errors";
import { displayUrl, httpGet, parseDownloadUrl, Stalled, type FetchPolicy } from "./http-get";
import type { ChecksumAlgorithm } from "./partial-file";
import type { ImageChecksum } from "./download";

/** Sums files are a few KiB; anything far larger is not one. */
const MAX_SUMS_BYTES = 1024 * 1024;
const IDLE_TIMEOUT_MS = 30_000;
/** A few KiB take well under a second: a server trickling one for a minute is stalled, whatever its pace. */
const BODY_DEADLINE_MS = 60_000;
const HEX_LENGTH: Record<ChecksumAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface PublishedChecksumInput {
  checksumFileUrl: string;
  /** The image's URL: its last path segment is the name looked up. */
  fileUrl: string;
  algorithm: ChecksumAlgorithm;
}

/** The digest listed for `fileName`, or null. */
export function findChecksum(sums: string, fileName: string, algorithm: ChecksumAlgorithm): string | null {
  const hex = `[0-9a-fA-F]{${HEX_LENGTH[algorithm]}}`;
  const gnu = new RegExp(`^(${hex})\\s+\\*?(.+)$`);
  const bsd = new RegExp(`^${algorithm}\\s*\\((.+)\\)\\s*=\\s*(${hex})$`, "i");
  for (const raw of sums.split(/\r?\n/)) {
    const line = raw.trim();
    const g = gnu.exec(line);
    if (g && g[2]?.replace(/^\.\//, "") === fileName) return (g[1] as string).toLowerCase();
    const b = bsd.exec(line);
    if (b && b[1]?.replace(/^\.\//, "") === fileName) return (b[2] as string).toLowerCase();
  }
  return null;
}

async function readSmallBody(url: URL, signal: AbortSignal, policy: FetchPolicy): Promise<string> {
  const { response, url: finalUrl } = await httpGet(url, {
    headers: { "accept-encoding": "identity" },
    signal,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    maxRedirects: 5,
    target: { kind: "policy", policy },
  }).catch((err: unknown) => {
    throw err instanceof Stalled ? transientFailure("DOWNLOAD_STALLED", `GET ${displayUrl(url)}: ${err.message}`) : err;
  });
  const status = response.statusCode ?? 0;
  if (status !== 200) {
    response.destroy();
    const what = `GET ${displayUrl(finalUrl)} answered ${status}`;
    throw status >= 500 || status === 429 ? transientFailure("DOWNLOAD_FAILED", what) : permanentFailure("DOWNLOAD_FAILED", what);
  }
  const deadline = setTimeout(() => response.destroy(new Stalled(`not read within ${BODY_DEADLINE_MS / 1000} s`)), BODY_DEADLINE_MS);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_SUMS_BYTES) {
        response.destroy();
        throw permanentFailure("CONTENT_TOO_LARGE", `${displayUrl(finalUrl)} is larger than ${MAX_SUMS_BYTES} bytes: not a sums file`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    throw err instanceof Stalled ? transientFailure("DOWNLOAD_STALLED", `GET ${displayUrl(finalUrl)}: ${err.message}`) : err;
  } finally {
    clearTimeout(deadline);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The activity, over this host's fetch policy: a sums file is fetched like any download. */
export function createPublishedChecksumFetcher(policy: FetchPolicy) {
  return async function fetchPublishedChecksum(input: PublishedChecksumInput): Promise<ImageChecksum> {
    const sumsUrl = parseDownloadUrl(input.checksumFileUrl);
    const fileName = decodeURIComponent(parseDownloadUrl(input.fileUrl).pathname.split("/").pop() ?? "");
    const sums = await readSmallBody(sumsUrl, Context.current().cancellationSignal, policy);
    const value = findChecksum(sums, fileName, input.algorithm);
    if (!value) throw permanentFailure("VALIDATION_FAILED", `${displayUrl(sumsUrl)} lists no ${input.algorithm} digest for ${fileName}`);
    return { algorithm: input.algorithm, value };
  };
}
