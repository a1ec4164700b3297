import express, { type RequestHandler } from "express";
import type { ApiContext } from "./use-cases/context";
import { bearerAuth } from "./auth";
import { healthRoutes } from "./health";
import { ApiError, notFoundHandler, problemHandler } from "./problem";
import { vmRoutes } from "./routes/vms";
import { operationRoutes } from "./routes/operations";
import { hostRoutes } from "./routes/hosts";
import { imageContentRoute, imageRoutes } from "./routes/images";
import { serveStagedUpload } from "./use-cases/image-uploads";
import { poolRoutes } from "./routes/pools";
import { volumeRoutes } from "./routes/volumes";
import { refuseUnsafeText } from "./text-hygiene";
import { networkRoutes, portRoutes } from "./routes/networks";
import { securityGroupRoutes } from "./routes/security-groups";
import { floatingIpRoutes, routerRoutes } from "./routes/routers";
import { guestAgentRoutes } from "./routes/guest-agent";
import { guestFileRoutes } from "./routes/guest-files";
import { agentUpgradeRoutes } from "./routes/agent-upgrades";

// Requests are small JSON documents; anything bigger is refused before it is parsed.
const MAX_BODY = "64kb";

/**
 * A request body must be JSON: one of another type (a form, as curl -d sends by default) or of no
 * stated type is 415 before it is parsed. A request without a body (an action, a DELETE) needs no
 * header; image uploads and guest file transfers (raw bodies) are routed before this.
 */
const requireJsonBodies: RequestHandler = (req, _res, next) => {
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  if (hasBody && !req.is("application/json")) {
    return next(new ApiError("UNSUPPORTED_MEDIA_TYPE", `request bodies must be sent as application/json, not ${req.headers["content-type"] ?? "without a Content-Type"}`));
  }
  next();
};

export function createApp(ctx: ApiContext, tokens: Map<string, string>): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");

  app.use(healthRoutes(ctx));

  // Hosts fetch staged uploads here with a one-time token instead of an API token.
  app.get("/internal/image-uploads/:id", (req, res) => serveStagedUpload(ctx, req, res));

  const v1 = express.Router();
  v1.use(bearerAuth(tokens));
  // Uploads stream their body to disk: before the JSON parser, which would read it.
  v1.use(imageContentRoute(ctx));
  v1.use(guestFileRoutes(ctx));
  v1.use(requireJsonBodies);
  v1.use(express.json({ limit: MAX_BODY, strict: true, type: () => true }));
  v1.use(refuseUnsafeText);
  v1.use("/vms", vmRoutes(ctx));
  v1.use("/vms", guestAgentRoutes(ctx));
  v1.use("/agent-upgrades", agentUpgradeRoutes(ctx));
  v1.use("/operations", operationRoutes(ctx));
  v1.use("/hosts", hostRoutes(ctx));
  v1.use("/images", imageRoutes(ctx));
  v1.use("/storage/pools", poolRoutes(ctx));
  v1.use("/volumes", volumeRoutes(ctx));
  v1.use("/networks", networkRoutes(ctx));
  v1.use("/ports", portRoutes(ctx));
  v1.use("/security-groups", securityGroupRoutes(ctx));
  v1.use("/routers", routerRoutes(ctx));
  v1.use("/floating-ips", floatingIpRoutes(ctx));
  app.use("/v1", v1);

  app.use(notFoundHandler);
  app.use(problemHandler);
  return app;
}
