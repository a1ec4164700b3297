import type { Context } from "@temporalio/activity";
import type { ActivityInterceptorsFactory } from "@temporalio/worker";

/**
 * Every activity of a host worker heartbeats while it runs, so Temporal notices a dead worker at
 * the activity's heartbeat timeout (seconds) instead of its start-to-close timeout (minutes), and a
 * cancel reaches even a short step. Activities that heartbeat themselves (downloads, copies) keep
 * their progress details: this beats only when the activity has not beaten for an interval, and
 * then re-sends the activity's last details — or the previous attempt's, until it sends its own —
 * so a resume point is never replaced by an empty beat.
 */
export function keepAliveHeartbeats(intervalMs = 1_000): ActivityInterceptorsFactory {
  return (ctx: Context) => ({
    inbound: {
      async execute(input, next) {
        let details: unknown = ctx.info.heartbeatDetails;
        let lastBeat = Date.now();
        const send = ctx.heartbeat;
        // The activity's own heartbeat() goes through this property of its context: note what it sends.
        (ctx as { heartbeat: (d?: unknown) => void }).heartbeat = (d?: unknown) => {
          details = d;
          lastBeat = Date.now();
          send(d);
        };
        const timer = setInterval(() => {
          if (Date.now() - lastBeat < intervalMs) return;
          lastBeat = Date.now();
          send(details);
        }, intervalMs);
        try {
          send(details);
          return await next(input);
        } finally {
          clearInterval(timer);
        }
      },
    },
  });
}
