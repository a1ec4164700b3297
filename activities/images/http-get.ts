import http from "node:http";
import https from "node:https";
import { permanentFailure, transientFailure } from "../../common/errors";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface HttpGetOptions {
  headers: Record<string, string>;
  /** Aborts the request and its body stream (the activity's cancellation signal). */
  signal: AbortSignal;
  /** A socket silent for this long fails the request: a stalled mirror must not hold the slot. */
  idleTimeoutMs: number;
  maxRedirects: number;
}

/** Origin and path only: user info and query strings may carry credentials or signed tokens. */
export function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export function parseDownloadUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw permanentFailure("VALIDATION_FAILED", "image url is not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw permanentFailure("VALIDATION_FAILED", `image url must be http or https, not ${url.protocol}`);
  }
  return url;
}

function requestOnce(url: URL, options: HttpGetOptions): Promise<http.IncomingMessage> {
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.get(url, { headers: options.headers, signal: options.signal }, resolve);
    request.setTimeout(options.idleTimeoutMs, () =>
      request.destroy(new Error(`no data from ${displayUrl(url)} for ${options.idleTimeoutMs} ms`)),
    );
    request.on("error", (err) => {
      if (options.signal.aborted) return reject(options.signal.reason);
      reject(transientFailure("DOWNLOAD_FAILED", `GET ${displayUrl(url)}: ${err.message}`));
    });
  });
}

/**
 * GET that follows redirects (same headers, so a Range survives them) and answers the final
 * response with its body unread. Refuses a redirect to another scheme or from https to http: a
 * downgrade would let anyone on the path substitute the image when no checksum is given.
 */
export async function httpGet(start: URL, options: HttpGetOptions): Promise<{ response: http.IncomingMessage; url: URL }> {
  let url = start;
  for (let redirects = 0; ; redirects++) {
    const response = await requestOnce(url, options);
    const status = response.statusCode ?? 0;
    if (!REDIRECT_STATUSES.has(status)) return { response, url };
    response.resume();
    const location = response.headers.location;
    if (!location) throw permanentFailure("DOWNLOAD_FAILED", `${displayUrl(url)} answered ${status} without a Location`);
    if (redirects >= options.maxRedirects) {
      throw permanentFailure("DOWNLOAD_FAILED", `more than ${options.maxRedirects} redirects from ${displayUrl(start)}`);
    }
    const next = new URL(location, url);
    if ((next.protocol !== "http:" && next.protocol !== "https:") || (url.protocol === "https:" && next.protocol === "http:")) {
      throw permanentFailure("DOWNLOAD_FAILED", `refusing redirect from ${url.protocol} to ${next.protocol}`);
    }
    url = next;
  }
}
