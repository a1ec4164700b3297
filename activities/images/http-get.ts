import { lookup as dnsLookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { addressAllowed, refusedBeforeResolving, type FetchAllowList } from "../../common/fetch-policy";
import { permanentFailure, transientFailure } from "../../common/errors";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Name resolution, as dns.lookup(name, { all: true }) answers it (tests script it to play DNS rebinding). */
export type Resolver = (hostName: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: Resolver = (hostName) => dnsLookup(hostName, { all: true, verbatim: true });

/**
 * Where a download may connect, and how hard it tries (common/fetch-policy.ts has the rules).
 * Connection failures (refused, reset, unreachable, no answer within connectTimeoutMs) are retried
 * `connectAttempts` times in all, a moment apart, then fail for good with one message for all of
 * them: the download does not wait minutes on a dead address, and the answer does not tell a closed
 * port from a filtered one.
 */
export interface FetchPolicy {
  allow: FetchAllowList;
  resolve?: Resolver;
  connectTimeoutMs: number;
  connectAttempts: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_CONNECT_ATTEMPTS = 3;
/** No allow-list: public addresses only. */
export const DEFAULT_FETCH_POLICY: FetchPolicy = {
  allow: { cidrs: [], hostNames: [] },
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  connectAttempts: DEFAULT_CONNECT_ATTEMPTS,
};

/**
 * What a GET may reach: a URL a user (or the catalog) named, under the fetch policy; or the control
 * plane's own staging URL for uploads. The latter is trusted configuration, not user input: the
 * control plane builds it from its own QX_API_PUBLIC_URL (or where its API listens, often loopback)
 * and never from a request, so the address rules do not apply to it. It is held to what it is for
 * instead: a GET of /internal/image-uploads/..., and no redirect is followed (the API sends none).
 */
export type FetchTarget = { kind: "policy"; policy: FetchPolicy } | { kind: "control-plane" };

export const STAGED_UPLOAD_PATH = "/internal/image-uploads/";

export interface HttpGetOptions {
  headers: Record<string, string>;
  /** Aborts the request and its body stream (the activity's cancellation signal). */
  signal: AbortSignal;
  /** A socket silent for this long fails the request with Stalled: a stalled mirror must not hold the slot. */
  idleTimeoutMs: number;
  maxRedirects: number;
  target: FetchTarget;
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

function notAllowed(url: URL) {
  return permanentFailure("URL_NOT_ALLOWED", `${displayUrl(url)}: ${url.hostname} is not an address downloads may reach (see QX_FETCH_ALLOW)`);
}

/** The policy's refusal of every address a name resolved to, raised inside the connection's lookup. */
class AddressRefused extends Error {}

/**
 * The connection's own name lookup: resolves, keeps only the addresses the policy allows, and hands
 * exactly those to the socket. The check and the connect use one answer, so a DNS server that
 * answers a public address to a check and 127.0.0.1 to the connect (rebinding) has no second
 * question to answer.
 */
function guardedLookup(policy: FetchPolicy): LookupFunction {
  const resolve = policy.resolve ?? systemResolver;
  return (hostName, options, callback) => {
    resolve(hostName).then(
      (answers) => {
        const allowed = answers.filter((a) => (!options.family || a.family === options.family) && addressAllowed(a.address, hostName, policy.allow));
        const first = allowed[0];
        if (!first) return callback(new AddressRefused(), "", 0);
        if (options.all) return callback(null, allowed);
        callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, "", 0),
    );
  };
}

/** The server went silent (no response, or no body byte) for idleTimeoutMs; the caller decides what a stall costs. */
export class Stalled extends Error {}

/** The connection could not be made (vs. an answer that came): these are retried briefly, then refused. */
class ConnectFailure extends Error {}

const CONNECT_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNABORTED", "EPIPE", "EADDRNOTAVAIL"]);

function requestOnce(url: URL, options: HttpGetOptions): Promise<http.IncomingMessage> {
  const { target } = options;
  if (target.kind === "policy") {
    // A literal address is never looked up (the socket connects to it as it is): judged here.
    if (refusedBeforeResolving(url, target.policy.allow)) return Promise.reject(notAllowed(url));
  } else if (!url.pathname.startsWith(STAGED_UPLOAD_PATH)) {
    return Promise.reject(permanentFailure("VALIDATION_FAILED", "a control-plane source is a staged upload, nothing else"));
  }
  const client = url.protocol === "https:" ? https : http;
  const lookup = target.kind === "policy" ? guardedLookup(target.policy) : undefined;
  const connectTimeoutMs = target.kind === "policy" ? target.policy.connectTimeoutMs : DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let connected = false;
    const request = client.get(url, { headers: options.headers, signal: options.signal, ...(lookup ? { lookup } : {}) }, (response) => {
      connected = true;
      // From here the body's reader watches for stalls (transfer-meter.ts), with its floor as well.
      request.setTimeout(0);
      resolve(response);
    });
    request.on("socket", (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => request.destroy(new ConnectFailure("connect timeout")), connectTimeoutMs);
      socket.once("connect", () => clearTimeout(timer)).once("close", () => clearTimeout(timer));
    });
    request.setTimeout(options.idleTimeoutMs, () => request.destroy(new Stalled(`no data for ${Math.round(options.idleTimeoutMs / 1000)} s`)));
    request.on("error", (err: NodeJS.ErrnoException) => {
      if (options.signal.aborted) return reject(options.signal.reason);
      if (err instanceof Stalled) return reject(err);
      if (err instanceof AddressRefused) return reject(notAllowed(url));
      if (!connected && (err instanceof ConnectFailure || CONNECT_ERRORS.has(err.code ?? ""))) return reject(new ConnectFailure(err.message));
      reject(transientFailure("DOWNLOAD_FAILED", `GET ${displayUrl(url)}: ${err.message}`));
    });
  });
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

/** requestOnce, with connection failures retried a few times a moment apart, then one permanent answer. */
async function connectAndRequest(url: URL, options: HttpGetOptions): Promise<http.IncomingMessage> {
  const attempts = options.target.kind === "policy" ? options.target.policy.connectAttempts : DEFAULT_CONNECT_ATTEMPTS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await requestOnce(url, options);
    } catch (err) {
      if (!(err instanceof ConnectFailure)) throw err;
      if (attempt >= attempts) throw permanentFailure("DOWNLOAD_FAILED", `could not connect to ${url.origin}`);
      await sleep(500 * attempt, options.signal);
    }
  }
}

/**
 * GET that follows redirects (same headers, so a Range survives them), each one under the policy
 * again, and answers the final response with its body unread. Refuses a redirect to another scheme
 * or from https to http: a downgrade would let anyone on the path substitute the image when no
 * checksum is given.
 */
export async function httpGet(start: URL, options: HttpGetOptions): Promise<{ response: http.IncomingMessage; url: URL }> {
  let url = start;
  for (let redirects = 0; ; redirects++) {
    const response = await connectAndRequest(url, options);
    const status = response.statusCode ?? 0;
    if (!REDIRECT_STATUSES.has(status)) return { response, url };
    response.resume();
    const location = response.headers.location;
    if (!location) throw permanentFailure("DOWNLOAD_FAILED", `${displayUrl(url)} answered ${status} without a Location`);
    const maxRedirects = options.target.kind === "control-plane" ? 0 : options.maxRedirects;
    if (redirects >= maxRedirects) {
      throw permanentFailure("DOWNLOAD_FAILED", `more than ${maxRedirects} redirects from ${displayUrl(start)}`);
    }
    const next = new URL(location, url);
    if ((next.protocol !== "http:" && next.protocol !== "https:") || (url.protocol === "https:" && next.protocol === "http:")) {
      throw permanentFailure("DOWNLOAD_FAILED", `refusing redirect from ${url.protocol} to ${next.protocol}`);
    }
    url = next;
  }
}
