import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { BackgroundHash } from "./background-hash";

export type ChecksumAlgorithm = "sha256" | "sha512";

const READ_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Appended bytes are gathered into slots of a shared ring; a full slot is written (on the libuv
 * thread pool) and hashed (on a worker thread) at the same time, while the main thread goes on
 * receiving into the next slot. 4 MiB slots make the per-slot costs (a message each way, a write
 * call) negligible; 4 of them let receiving run up to three slots ahead of the slowest consumer.
 */
const SLOT_BYTES = 4 * 1024 * 1024;
const SLOT_COUNT = 4;

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}

/** Hashes a whole file (cancellable between chunks). */
export async function hashFile(path: string, algorithm: ChecksumAlgorithm, signal: AbortSignal): Promise<string> {
  const file = await open(path, "r");
  try {
    const hash = createHash(algorithm);
    const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    for (;;) {
      throwIfAborted(signal);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return hash.digest("hex");
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
}

async function writeAll(file: FileHandle, data: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await file.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}

/**
 * The `.partial-<imageId>` file of a download: appends while hashing and keeping the first bytes
 * for format detection. Opening it to resume re-hashes what is on disk up to the resume point and
 * cuts off the rest: bytes past the last heartbeat were never synced.
 *
 * `append` copies into the ring and returns at once while a slot is free (a promise to wait on
 * only when all are busy), so the caller never waits for the disk or the hash chunk by chunk.
 */
export class PartialFile {
  private readonly shared = new SharedArrayBuffer(SLOT_BYTES * SLOT_COUNT);
  private readonly ring = Buffer.from(this.shared);
  private readonly hash: BackgroundHash;
  private readonly freeSlots = Array.from({ length: SLOT_COUNT }, (_, slot) => slot);
  private readonly slotWaiters: Array<() => void> = [];
  /** The slot being filled and how many bytes it holds. */
  private filling: { slot: number; length: number } | null = null;
  /** Each dispatched slot's write and hash; they never reject (a failure is kept in `failure`). */
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;
  private headChunks: Buffer[] = [];
  private headLength = 0;
  /** Bytes appended; they reach the file in order, the last ones possibly still on their way. */
  size = 0;

  private constructor(
    private readonly file: FileHandle,
    algorithm: ChecksumAlgorithm,
    private readonly probeBytes: number,
  ) {
    this.hash = new BackgroundHash(this.shared, algorithm);
  }

  static async open(path: string, resumeFrom: number, algorithm: ChecksumAlgorithm, probeBytes: number, signal: AbortSignal): Promise<PartialFile> {
    const file = resumeFrom > 0 ? await openExisting(path) : null;
    const partial = new PartialFile(file ?? (await open(path, "w")), algorithm, probeBytes);
    try {
      const keep = file ? Math.min(resumeFrom, (await file.stat()).size) : 0;
      await partial.file.truncate(keep);
      await partial.rehash(keep, signal);
      return partial;
    } catch (err) {
      await partial.close();
      throw err;
    }
  }

  /** The first bytes (up to the probe size) received so far. */
  head(): Buffer {
    return Buffer.concat(this.headChunks);
  }

  headComplete(): boolean {
    return this.headLength >= this.probeBytes;
  }

  /** Takes `chunk` (copied: the caller may reuse it); a promise only when it must wait for a free slot. */
  append(chunk: Buffer): Promise<void> | undefined {
    this.throwIfFailed();
    this.keepHead(chunk);
    return this.copyIn(chunk);
  }

  /** Sends the bytes appended so far on to the file and the hash, and waits until both have them. */
  async flush(): Promise<void> {
    if (this.filling) this.dispatch(true);
    await Promise.all([...this.inFlight]);
    this.throwIfFailed();
  }

  /**
   * Makes every byte appended before the call durable and answers how many that is: the offset
   * that may be heartbeated as the resume point. Appending may go on meanwhile.
   */
  async sync(): Promise<number> {
    const durable = this.size;
    await this.flush();
    await this.file.datasync();
    return durable;
  }

  /** The server sent the whole file instead of the requested range: begin again from byte 0. */
  async restart(): Promise<void> {
    await this.flush();
    await this.file.truncate(0);
    this.hash.reset();
    this.headChunks = [];
    this.headLength = 0;
    this.size = 0;
  }

  async digest(): Promise<string> {
    await this.flush();
    return this.hash.digest();
  }

  /**
   * Waits for the writes under way (the file must not close beneath them), then releases
   * everything. An append still waiting for a slot then fails instead of writing.
   */
  async close(): Promise<void> {
    this.failure ??= new Error("the partial file is closed");
    await Promise.all([...this.inFlight]);
    await this.hash.terminate();
    await this.file.close();
  }

  private copyIn(chunk: Buffer): Promise<void> | undefined {
    let copied = 0;
    while (copied < chunk.length) {
      if (!this.filling) {
        const slot = this.freeSlots.pop();
        if (slot === undefined) return this.copyInWhenFree(chunk.subarray(copied));
        this.filling = { slot, length: 0 };
      }
      const taken = chunk.copy(this.ring, this.filling.slot * SLOT_BYTES + this.filling.length, copied, copied + SLOT_BYTES - this.filling.length);
      this.filling.length += taken;
      this.size += taken;
      copied += taken;
      if (this.filling.length === SLOT_BYTES) this.dispatch(true);
    }
    return undefined;
  }

  private async copyInWhenFree(rest: Buffer): Promise<void> {
    await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    this.throwIfFailed();
    await this.copyIn(rest);
  }

  /** Hands the filling slot to the hash, and to the file unless its bytes came from there (a re-hash). */
  private dispatch(write: boolean): void {
    const { slot, length } = this.filling!;
    this.filling = null;
    const start = slot * SLOT_BYTES;
    const hashed = this.hash.update(start, start + length);
    const written = write ? writeAll(this.file, this.ring.subarray(start, start + length), this.size - length) : undefined;
    const done = Promise.all([hashed, written])
      .then(
        () => undefined,
        (err: unknown) => {
          this.failure ??= err;
        },
      )
      .finally(() => {
        this.inFlight.delete(done);
        this.freeSlots.push(slot);
        this.slotWaiters.shift()?.();
      });
    this.inFlight.add(done);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private keepHead(chunk: Buffer): void {
    if (this.headLength >= this.probeBytes) return;
    const part = chunk.subarray(0, this.probeBytes - this.headLength);
    this.headChunks.push(Buffer.from(part));
    this.headLength += part.length;
  }

  /** Reads the kept part of the file straight into ring slots, so reading and hashing overlap too. */
  private async rehash(length: number, signal: AbortSignal): Promise<void> {
    while (this.size < length) {
      throwIfAborted(signal);
      const slot = this.freeSlots.pop();
      if (slot === undefined) {
        await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
        this.throwIfFailed();
        continue;
      }
      const start = slot * SLOT_BYTES;
      const { bytesRead } = await this.file.read(this.ring, start, Math.min(SLOT_BYTES, length - this.size), this.size);
      if (bytesRead === 0) {
        this.freeSlots.push(slot);
        break;
      }
      this.keepHead(this.ring.subarray(start, start + bytesRead));
      this.size += bytesRead;
      this.filling = { slot, length: bytesRead };
      this.dispatch(false);
    }
    await this.flush();
  }
}

async function openExisting(path: string): Promise<FileHandle | null> {
  try {
    return await open(path, "r+");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}
