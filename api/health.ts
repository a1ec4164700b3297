import { Router } from "express";
import { taskQueuePollers } from "../common/task-queue-pollers";
import type { ApiContext } from "./use-cases/context";

/**
 * /healthz is liveness: the process answers (a supervisor restarts it when it does not). It checks
 * nothing else, so an outage of PostgreSQL or Temporal never makes a supervisor kill a healthy API.
 * /readyz is readiness: whether a request would be served now — PostgreSQL answers, Temporal
 * answers, a control-plane worker polls its queue (workflows would run), and a host is online
 * (a VM could be placed). 200 or 503, with each check and why it failed.
 */
// A live worker keeps a long poll open (up to about a minute); the server lists it with the time
// of its last poll, so a worker silent for longer than this is taken as gone.
const POLLER_FRESH_MS = 90_000;
const CHECK_TIMEOUT_MS = 2_000;

interface Check {
  ok: boolean;
  detail?: string;
}

async function check(run: () => Promise<string | undefined>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    const detail = await Promise.race([run(), timeout]);
    return detail === undefined ? { ok: true } : { ok: false, detail };
  } catch (err) {
    return { ok: false, detail: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const [database, temporal, controlPlaneWorkers, hosts] = await Promise.all([
      check(async () => {
        await ctx.prisma.$queryRaw`SELECT 1`;
        return undefined;
      }),
      check(async () => (ctx.temporalProbe.available() ? undefined : `Temporal does not answer: ${ctx.temporalProbe.lastError()}`)),
      check(async () => {
        if (!ctx.temporalProbe.available()) return "unknown while Temporal does not answer";
        const pollers = await taskQueuePollers(ctx.temporal, ctx.config.controlPlaneQueue, "workflow");
        const live = pollers.filter((p) => Date.now() - p.lastAccessTime.getTime() < POLLER_FRESH_MS);
        return live.length > 0 ? undefined : `no worker polls ${ctx.config.controlPlaneQueue}`;
      }),
      check(async () => ((await ctx.prisma.host.count({ where: { state: "ONLINE" } })) > 0 ? undefined : "no host is online")),
    ]);
    const checks = { database, temporal, controlPlaneWorkers, hosts };
    const ready = Object.values(checks).every((c) => c.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? "ready" : "not ready", checks });
  });
  return router;
}
