import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";

export type ChecksumAlgorithm = "sha256" | "sha512";

const READ_CHUNK_BYTES = 4 * 1024 * 1024;

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

/**
 * The `.partial-<imageId>` file of a download: appends at a tracked offset while hashing and
 * keeping the first bytes for format detection. Opening it to resume re-hashes what is on disk up
 * to the resume point and cuts off the rest: bytes past the last heartbeat were never synced.
 */
export class PartialFile {
  private hash: Hash;
  private headChunks: Buffer[] = [];
  private headLength = 0;
  size = 0;

  private constructor(
    private readonly file: FileHandle,
    private readonly algorithm: ChecksumAlgorithm,
    private readonly probeBytes: number,
  ) {
    this.hash = createHash(algorithm);
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

  async append(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.keepHead(chunk);
    let written = 0;
    while (written < chunk.length) {
      const { bytesWritten } = await this.file.write(chunk, written, chunk.length - written, this.size + written);
      written += bytesWritten;
    }
    this.size += chunk.length;
  }

  /** The server sent the whole file instead of the requested range: begin again from byte 0. */
  async restart(): Promise<void> {
    await this.file.truncate(0);
    this.hash = createHash(this.algorithm);
    this.headChunks = [];
    this.headLength = 0;
    this.size = 0;
  }

  /** Makes every appended byte durable, so `size` may be heartbeated as the resume point. */
  async sync(): Promise<void> {
    await this.file.datasync();
  }

  digest(): string {
    return this.hash.digest("hex");
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  private keepHead(chunk: Buffer): void {
    if (this.headLength >= this.probeBytes) return;
    const part = chunk.subarray(0, this.probeBytes - this.headLength);
    this.headChunks.push(Buffer.from(part));
    this.headLength += part.length;
  }

  private async rehash(length: number, signal: AbortSignal): Promise<void> {
    const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    while (this.size < length) {
      throwIfAborted(signal);
      const { bytesRead } = await this.file.read(buffer, 0, Math.min(buffer.length, length - this.size), this.size);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      this.hash.update(chunk);
      this.keepHead(chunk);
      this.size += bytesRead;
    }
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
