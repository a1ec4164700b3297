import http from "node:http";
import type { AddressInfo } from "node:net";
import { listenInNamespace, testNetwork } from "../support/test-network";

/** How the test server answers one path: a real HTTP server with the failure modes mirrors have. */
export interface ImageRoute {
  body: Buffer;
  /** Non-200 status sent with `body` (an error page). */
  status?: number;
  /** Honour `Range: bytes=N-` with 206 (else the whole body, 200). */
  ranges?: boolean;
  etag?: string;
  /** Content-Length to announce instead of the true one; null sends the body chunked. */
  declaredLength?: number | null;
  /** Close the connection once the body has been sent up to this offset. */
  cutAt?: number;
  /** Send the body up to this offset, then hold the connection open, silent, until the client leaves. */
  stallAt?: number;
  /** Send chunks (64 KiB, or chunkBytes) this many ms apart (a slow mirror). */
  chunkDelayMs?: number;
  /** Chunk size: 1 with chunkDelayMs 1000 is the byte-a-second trickle that holds a slot. */
  chunkBytes?: number;
  redirectTo?: string;
  /** A credential-checking mirror: the exact Authorization header and query it wants, else 401. */
  expectAuthorization?: string;
  expectQuery?: string;
}

const CHUNK = 64 * 1024;

/** Waits for the socket to take more, or to close; leaves no listener behind (a slow route waits often). */
function drainOrClose(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done).off("close", done);
      resolve();
    };
    res.on("drain", done).on("close", done);
  });
}

export class ImageServer {
  private readonly routes = new Map<string, ImageRoute>();
  private readonly served = new Map<string, number>();
  private readonly server = http.createServer((req, res) => void this.handle(req, res));

  /** Listens in the test network's namespace: downloads reach it only through the fetch policy's allow-list. */
  async start(): Promise<void> {
    await listenInNamespace(testNetwork(), this.server);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  url(path: string): string {
    return `http://${testNetwork().namespaceAddress}:${(this.server.address() as AddressInfo).port}${path}`;
  }

  route(path: string, route: ImageRoute): void {
    this.routes.set(path, route);
    this.served.set(path, 0);
  }

  /** Body bytes written for `path` since it was routed (or since the last reset). */
  bytesServed(path: string): number {
    return this.served.get(path) ?? 0;
  }

  resetCount(path: string): void {
    this.served.set(path, 0);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requested = new URL(req.url ?? "/", "http://x");
    const path = requested.pathname;
    const route = this.routes.get(path);
    if (!route) {
      res.writeHead(404, { "content-type": "text/html" }).end("<!DOCTYPE html><title>404</title>");
      return;
    }
    const authorised = route.expectAuthorization === undefined || req.headers.authorization === route.expectAuthorization;
    if (!authorised || (route.expectQuery !== undefined && requested.search !== route.expectQuery)) {
      res.writeHead(401, { "content-type": "text/html", "www-authenticate": 'Basic realm="mirror"' }).end("<!DOCTYPE html><title>401</title>");
      return;
    }
    if (route.redirectTo) {
      res.writeHead(302, { location: route.redirectTo }).end();
      return;
    }
    if (route.status) {
      res.writeHead(route.status, { "content-type": "text/html" }).end(route.body);
      return;
    }
    const total = route.body.length;
    const rangeStart = /^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1];
    const ifRange = req.headers["if-range"];
    const useRange = route.ranges && rangeStart !== undefined && (ifRange === undefined || ifRange === route.etag);
    const start = useRange ? Number(rangeStart) : 0;
    if (useRange && start >= total) {
      res.writeHead(416, { "content-range": `bytes */${total}` }).end();
      return;
    }
    // One connection per request: a wrong Content-Length must not leak into the next response.
    const headers: http.OutgoingHttpHeaders = { "content-type": "application/octet-stream", connection: "close" };
    if (route.ranges) headers["accept-ranges"] = "bytes";
    if (route.etag) headers.etag = route.etag;
    if (useRange) headers["content-range"] = `bytes ${start}-${total - 1}/${total}`;
    if (route.declaredLength !== null) headers["content-length"] = useRange ? total - start : (route.declaredLength ?? total);
    res.writeHead(useRange ? 206 : 200, headers);
    await this.send(path, route, start, req, res);
  }

  private async send(path: string, route: ImageRoute, start: number, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const end = Math.min(route.body.length, route.cutAt ?? Infinity, route.stallAt ?? Infinity);
    const size = route.chunkBytes ?? CHUNK;
    for (let offset = start; offset < end && !res.destroyed; offset += size) {
      const chunk = route.body.subarray(offset, Math.min(offset + size, end));
      this.served.set(path, this.bytesServed(path) + chunk.length);
      if (!res.write(chunk)) await drainOrClose(res);
      if (route.chunkDelayMs) await new Promise((resolve) => setTimeout(resolve, route.chunkDelayMs));
    }
    if (route.stallAt !== undefined && !res.destroyed) await new Promise((resolve) => res.once("close", resolve));
    // Cut off: flush what was written, then close the connection mid-body.
    if (route.cutAt !== undefined) req.socket.end();
    else if (route.stallAt !== undefined) return;
    else res.end();
  }
}
