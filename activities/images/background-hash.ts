import { Worker } from "node:worker_threads";
import type { ChecksumAlgorithm } from "./partial-file";

/**
 * The worker: hashes ranges of the shared ring in the order they are posted, answering each
 * request in turn. Inline (eval) source, so it runs the same from tsc output, tsx and jest.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const ring = Buffer.from(workerData.ring);
let hash = createHash(workerData.algorithm);
parentPort.on("message", (request) => {
  if (request.kind === "update") {
    hash.update(ring.subarray(request.start, request.end));
    parentPort.postMessage(null);
  } else if (request.kind === "digest") {
    parentPort.postMessage(hash.digest("hex"));
  } else {
    hash = createHash(workerData.algorithm);
  }
});
`;

type HashRequest = { kind: "update"; start: number; end: number } | { kind: "digest" } | { kind: "reset" };

interface PendingReply {
  resolve(reply: string | null): void;
  reject(err: Error): void;
}

/**
 * A running hash computed on a worker thread over ranges of a SharedArrayBuffer. Node's hashing is
 * synchronous and, at about 1.2 GiB/s for sha256, the largest cost of a download: on the main
 * thread it would take turns with receiving the body instead of running beside it.
 */
export class BackgroundHash {
  private readonly worker: Worker;
  /** The worker answers in request order, so replies are matched first-in, first-out. */
  private readonly pending: PendingReply[] = [];
  private failure: Error | null = null;

  constructor(ring: SharedArrayBuffer, algorithm: ChecksumAlgorithm) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ring, algorithm } });
    this.worker.on("message", (reply: string | null) => this.pending.shift()?.resolve(reply));
    this.worker.on("error", (err) => this.fail(err));
    this.worker.on("exit", (code) => this.fail(new Error(`the hash worker exited with code ${code}`)));
  }

  /** Hashes ring bytes [start, end); resolves once the worker no longer reads them. */
  async update(start: number, end: number): Promise<void> {
    await this.request({ kind: "update", start, end });
  }

  /** Starts a new hash (the file restarts from byte 0). Ordered after every update already posted. */
  reset(): void {
    this.worker.postMessage({ kind: "reset" } satisfies HashRequest);
  }

  /** Hex digest of everything hashed since the start or the last reset; the hash then starts over. */
  async digest(): Promise<string> {
    return (await this.request({ kind: "digest" })) as string;
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  private request(request: HashRequest): Promise<string | null> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.worker.postMessage(request);
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const reply of this.pending.splice(0)) reply.reject(this.failure);
  }
}
