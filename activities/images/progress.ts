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
  bytesPerSecond: number;
  validator?: string;
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
  };
}

/**
 * Sends heartbeats at a steady pace: `report` sends at once, and a timer repeats the last state
 * whenever nothing was reported for an interval. The repeat matters: Temporal only delivers a
 * cancellation (and only sees a live activity) in answer to a heartbeat, so a stalled transfer or
 * a long qemu-img run must keep beating.
 */
export class ProgressHeartbeat {
  private state: ProgressState;
  private lastBeatAt = Date.now();
  private lastBeatBytes: number;
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
    this.lastBeatBytes = this.state.bytesDone;
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

  private beat(): void {
    const now = Date.now();
    const elapsedMs = Math.max(now - this.lastBeatAt, 1);
    const bytesPerSecond = Math.max(0, Math.round(((this.state.bytesDone - this.lastBeatBytes) * 1000) / elapsedMs));
    this.lastBeatAt = now;
    this.lastBeatBytes = this.state.bytesDone;
    const details: DownloadProgress = { ...this.state, bytesPerSecond };
    if (details.validator === undefined) delete details.validator;
    this.context.heartbeat(details);
  }
}
