import { Router } from "express";
import type { ApiContext } from "../use-cases/context";
import { getFleetUpgrade, startFleetUpgrade } from "../use-cases/agent-upgrades";
import { fleetUpgradeBody } from "../agent-schemas";
import { idParam } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { sendAccepted } from "./accepted";

/** /v1/agent-upgrades — guest agent upgrades over many VMs. */
export function agentUpgradeRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.post("/", async (req, res) => {
    const body = parse(fleetUpgradeBody, req.body ?? {}, "body");
    const started = await startFleetUpgrade(ctx, body, res.locals.user, idempotencyKey(req.get("idempotency-key")));
    sendAccepted(ctx.config, res, started, { upgradeId: started.runId, upgrade: `/v1/agent-upgrades/${started.runId}` });
  });

  router.get("/:id", async (req, res) => {
    res.json(await getFleetUpgrade(ctx, parse(idParam, req.params.id, "agent upgrade id")));
  });

  return router;
}
