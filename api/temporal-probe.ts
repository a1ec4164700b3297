import type { Connection } from "@temporalio/client";

/**
 * Whether the API can reach Temporal, checked in the background (gRPC health check, every second,
 * 2 s deadline) rather than on each request: a mutating request is refused with 503 before it
 * records anything when the last answer is older than 3 s, and /readyz reports it. A request that
 * passes this check and still cannot start its workflow takes back what it recorded
 * (use-cases/start-operation.ts), so the probe only has to be mostly right.
 */
export interface TemporalProbe {
  available(): boolean;
  /** Why the last check failed, for /readyz. */
  lastError(): string | null;
  stop(): void;
}

const INTERVAL_MS = 1_000;
const CHECK_DEADLINE_MS = 2_000;
const STALE_AFTER_MS = 3_000;

export async function startTemporalProbe(connection: Connection): Promise<TemporalProbe> {
  let lastOk = 0;
  let error: string | null = "not checked yet";
  const check = async () => {
    try {
      await connection.withDeadline(Date.now() + CHECK_DEADLINE_MS, () => connection.healthService.check({}));
      lastOk = Date.now();
      error = null;
    } catch (err) {
      error = summariseTemporalError(err);
    }
  };
  await check();
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void check().finally(() => (running = false));
  }, INTERVAL_MS);
  timer.unref();
  return {
    available: () => Date.now() - lastOk < STALE_AFTER_MS,
    lastError: () => (Date.now() - lastOk < STALE_AFTER_MS ? null : (error ?? "no answer")),
    stop: () => clearInterval(timer),
  };
}

// gRPC status codes that mean "Temporal did not answer", as opposed to an answer that refuses.
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

/** True when the error (or a cause) says Temporal could not be reached in time. */
export function isTemporalUnavailable(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (code === UNAVAILABLE || code === DEADLINE_EXCEEDED) return true;
    if (e instanceof Error && /Failed to connect before the deadline|No connection established/i.test(e.message)) return true;
  }
  return false;
}

export function summariseTemporalError(err: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = err; e && messages.length < 3; e = (e as { cause?: unknown }).cause) {
    if (e instanceof Error && !messages.includes(e.message)) messages.push(e.message);
  }
  return messages.join(": ") || String(err);
}
