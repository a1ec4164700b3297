import { Router } from "express";
import type { ApiContext } from "../use-cases/context";
import { startAgentUpgrade, startGuestExec } from "../use-cases/guest-agent";
import { agentExecBody, agentUpgradeBody } from "../agent-schemas";
import { idParam } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { sendAccepted } from "./accepted";

/** /v1/vms/:id/agent/... — through the VM's guest agent. */
export function guestAgentRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.post("/:id/agent/exec", async (req, res) => {
    const vmId = parse(idParam, req.params.id, "VM id");
    const body = parse(agentExecBody, req.body ?? {}, "body");
    const started = await startGuestExec(ctx, vmId, body, res.locals.user, idempotencyKey(req.get("idempotency-key")));
    sendAccepted(ctx.config, res, started, { vmId });
  });

  router.post("/:id/agent/upgrade", async (req, res) => {
    const vmId = parse(idParam, req.params.id, "VM id");
    const body = parse(agentUpgradeBody, req.body ?? {}, "body");
    sendAccepted(ctx.config, res, await startAgentUpgrade(ctx, vmId, body, res.locals.user, idempotencyKey(req.get("idempotency-key"))), { vmId });
  });

  return router;
}
