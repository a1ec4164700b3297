/**
 * When a transfer counts as stalled. A server sending a byte a second never trips an idle timeout,
 * yet it would hold a download slot for ever (two of them stop every download and upload of the
 * host): so besides "no byte for idleMs" there is a floor, "at least minBytes in every windowMs".
 * A stalled transfer fails DOWNLOAD_STALLED; it is retried `retries` times (resuming what arrived),
 * then fails for good.
 */
export interface StallPolicy {
  /** The floor: fewer than minBytes received over the last windowMs is a stall. */
  windowMs: number;
  minBytes: number;
  /** No byte at all for this long is a stall (also: no response headers for this long). */
  idleMs: number;
  /** Stalled attempts retried before the download fails for good. */
  retries: number;
}

export const DEFAULT_STALL_POLICY: StallPolicy = { windowMs: 60_000, minBytes: 64 * 1024, idleMs: 30_000, retries: 2 };

interface Sample {
  at: number;
  bytes: number;
}

/** Watches the bytes received by one attempt; says when (and why) it has stalled. */
export class TransferMeter {
  private readonly samples: Sample[];
  private startedAt: number;
  private lastProgressAt: number;
  private lastBytes: number;

  constructor(
    private readonly policy: StallPolicy,
    bytesAtStart: number,
    now = Date.now(),
  ) {
    this.samples = [{ at: now, bytes: bytesAtStart }];
    this.startedAt = now;
    this.lastProgressAt = now;
    this.lastBytes = bytesAtStart;
  }

  /** Records the count of bytes received so far. */
  observe(bytes: number, now = Date.now()): void {
    if (bytes > this.lastBytes) {
      this.lastBytes = bytes;
      this.lastProgressAt = now;
    }
    this.samples.push({ at: now, bytes });
    // Keep the newest sample at or before the window's start: the floor is measured from it.
    while (this.samples.length > 2 && this.samples[1]!.at <= now - this.policy.windowMs) this.samples.shift();
  }

  /**
   * Our side held the transfer up (the pool's disk was slow to take the bytes): that time is not the
   * server's, so the clocks start again from now.
   */
  excuse(now = Date.now()): void {
    this.lastProgressAt = now;
    this.startedAt = now;
    this.samples.splice(0, this.samples.length, { at: now, bytes: this.lastBytes });
  }

  /** Why the transfer has stalled, or null while it has not. */
  stallReason(now = Date.now()): string | null {
    if (now - this.lastProgressAt >= this.policy.idleMs) return `no data for ${Math.round((now - this.lastProgressAt) / 1000)} s`;
    if (now - this.startedAt < this.policy.windowMs) return null;
    const windowStart = this.samples[0]!;
    const received = this.lastBytes - windowStart.bytes;
    if (received >= this.policy.minBytes) return null;
    return `${received} bytes in ${Math.round((now - windowStart.at) / 1000)} s, below the floor of ${this.policy.minBytes} bytes per ${this.policy.windowMs / 1000} s`;
  }
}
