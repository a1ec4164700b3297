import type { Context } from "@temporalio/activity";

/**
 * Heartbeat details of downloadImage. `bytesDone` is also the resume point of the next attempt,
 * so it only ever counts bytes already synced to the partial file. `validator` (ETag or
 * Last-Modified) goes back to the server as If-Range, so a file changed upstream between two
 * attempts is fetched whole instead of being spliced.
 */
export interface DownloadProgress {
  phase: "downloading" | "verifying" | "converting";
  bytesDone: number;
  /** Null while the server has not said (no Content-Length). */
  bytesTotal: number | null;
  /** Measured over the last few seconds (RATE_WINDOW_MS), never from two beats a moment apart. */
  bytesPerSecond: number;
  validator?: string;
  /** Attempts that ended stalled so far (transfer-meter.ts): past the policy's retries, the download fails for good. */
  stalls?: number;
}

export type ProgressState = Omit<DownloadProgress, "bytesPerSecond">;

/** Reads the details a previous attempt heartbeated; anything malformed means "start over". */
export function resumePointOf(details: unknown): ProgressState | null {
  if (typeof details !== "object" || details === null) return null;
  const d = details as Partial<DownloadProgress>;
  if (typeof d.bytesDone !== "number" || !Number.isSafeInteger(d.bytesDone) || d.bytesDone < 0) return null;
  return {
    phase: "downloading",
    bytesDone: d.bytesDone,
    bytesTotal: typeof d.bytesTotal === "number" ? d.bytesTotal : null,
    validator: typeof d.validator === "string" ? d.validator : undefined,
    ...(typeof d.stalls === "number" && Number.isSafeInteger(d.stalls) && d.stalls > 0 ? { stalls: d.stalls } : {}),
  };
}

/** The rate shown is the bytes of this window over its length: a trickle reads as the trickle it is. */
const RATE_WINDOW_MS = 5_000;

/**
 * Sends heartbeats at a steady pace: `report` sends at once, and a timer repeats the last state
 * whenever nothing was reported for an interval. The repeat matters: Temporal only delivers a
 * cancellation (and only sees a live activity) in answer to a heartbeat, so a stalled transfer or
 * a long qemu-img run must keep beating.
 */
export class ProgressHeartbeat {
  private state: ProgressState;
  private lastBeatAt = Date.now();
  /** (time, bytesDone) of the beats of the last RATE_WINDOW_MS, oldest first. */
  private readonly samples: { at: number; bytes: number }[];
  private timer: NodeJS.Timeout | undefined;

  /**
   * Starts from the previous attempt's resume point, so beats sent while that is re-hashed carry
   * it on: a crash then still resumes from there, not from 0.
   */
  constructor(
    private readonly context: Context,
    readonly intervalMs: number,
    resume: ProgressState | null,
  ) {
    this.state = { ...(resume ?? { bytesDone: 0, bytesTotal: null }), phase: "verifying" };
    this.samples = [{ at: this.lastBeatAt, bytes: this.state.bytesDone }];
  }

  start(): void {
    this.timer = setInterval(() => {
      if (Date.now() - this.lastBeatAt >= this.intervalMs) this.beat();
    }, this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  report(state: Partial<ProgressState>): void {
    this.state = { ...this.state, ...state };
    this.beat();
  }

  /**
   * Bytes per second over the samples of the last RATE_WINDOW_MS, over at least one second: two
   * beats a millisecond apart (a report right after a timer beat) must not multiply a few bytes
   * into thousands per second.
   */
  private rate(now: number): number {
    this.samples.push({ at: now, bytes: this.state.bytesDone });
    while (this.samples.length > 2 && this.samples[1]!.at <= now - RATE_WINDOW_MS) this.samples.shift();
    const oldest = this.samples[0]!;
    return Math.max(0, Math.round(((this.state.bytesDone - oldest.bytes) * 1000) / Math.max(now - oldest.at, 1000)));
  }

  private beat(): void {
    const now = Date.now();
    this.lastBeatAt = now;
    const details: DownloadProgress = { ...this.state, bytesPerSecond: this.rate(now) };
    if (details.validator === undefined) delete details.validator;
    this.context.heartbeat(details);
  }
}
