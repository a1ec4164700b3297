import express from "express";
import type { ApiContext } from "./use-cases/context";
import { bearerAuth } from "./auth";
import { notFoundHandler, problemHandler } from "./problem";
import { vmRoutes } from "./routes/vms";
import { operationRoutes } from "./routes/operations";
import { hostRoutes } from "./routes/hosts";

// Requests are small JSON documents; anything bigger is refused before it is parsed.
const MAX_BODY = "64kb";

export function createApp(ctx: ApiContext, tokens: Map<string, string>): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");

  app.get("/healthz", async (_req, res) => {
    await ctx.prisma.$queryRaw`SELECT 1`;
    res.json({ status: "ok" });
  });

  const v1 = express.Router();
  v1.use(bearerAuth(tokens));
  v1.use(express.json({ limit: MAX_BODY, strict: true, type: () => true }));
  v1.use("/vms", vmRoutes(ctx));
  v1.use("/operations", operationRoutes(ctx));
  v1.use("/hosts", hostRoutes(ctx));
  app.use("/v1", v1);

  app.use(notFoundHandler);
  app.use(problemHandler);
  return app;
}
