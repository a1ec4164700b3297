import { Router } from "express";
import type { ApiContext } from "../use-cases/context";
import { createVm, deleteVm, powerAction, requireVm } from "../use-cases/vms";
import type { StartedOperation } from "../use-cases/start-operation";
import { presentVm } from "../presenters";
import { sendAccepted } from "./accepted";
import { createVmBody, idParam, powerActionBody, powerActionParam } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { attachNic, detachNic } from "../use-cases/ports";
import { nicBody } from "../network-schemas";

export function vmRoutes(ctx: ApiContext): Router {
  const router = Router();

  const accepted = (res: import("express").Response, started: StartedOperation, extra?: Record<string, unknown>) =>
    sendAccepted(ctx.config, res, started, extra);

  router.post("/", async (req, res) => {
    const body = parse(createVmBody, req.body, "body");
    const started = await createVm(ctx, body, res.locals.user, idempotencyKey(req.get("idempotency-key")));
    accepted(res, started, { vmId: started.vmId, vm: `/v1/vms/${started.vmId}` });
  });

  router.get("/", async (_req, res) => {
    const vms = await ctx.prisma.vm.findMany({ orderBy: { createdAt: "asc" }, include: { volumes: true, ports: { where: { owner: "VM" } }, guestAgent: true } });
    res.json({ items: vms.map(presentVm) });
  });

  router.get("/:id", async (req, res) => {
    const vmId = parse(idParam, req.params.id, "VM id");
    await requireVm(ctx, vmId);
    const vm = await ctx.prisma.vm.findUniqueOrThrow({ where: { id: vmId }, include: { volumes: true, ports: { where: { owner: "VM" } }, guestAgent: true } });
    res.json(presentVm(vm));
  });

  router.delete("/:id", async (req, res) => {
    const vmId = parse(idParam, req.params.id, "VM id");
    accepted(res, await deleteVm(ctx, vmId, res.locals.user, idempotencyKey(req.get("idempotency-key"))));
  });

  router.post("/:id/actions/:action", async (req, res) => {
    const vmId = parse(idParam, req.params.id, "VM id");
    const action = parse(powerActionParam, req.params.action, "action");
    const options = parse(powerActionBody, req.body ?? {}, "body");
    accepted(res, await powerAction(ctx, vmId, action, options, res.locals.user, idempotencyKey(req.get("idempotency-key"))));
  });

  // NICs (issue 10): hot-plug and unplug, each a workflow holding the VM's lock.
  router.post("/:id/nics", async (req, res) => {
    const vmId = parse(idParam, req.params.id, "VM id");
    const started = await attachNic(ctx, vmId, parse(nicBody, req.body, "body"), res.locals.user, idempotencyKey(req.get("idempotency-key")));
    accepted(res, started, { portId: started.portId, port: started.portId && `/v1/ports/${started.portId}` });
  });

  router.delete("/:id/nics/:portId", async (req, res) => {
    const vmId = parse(idParam, req.params.id, "VM id");
    const portId = parse(idParam, req.params.portId, "port id");
    accepted(res, await detachNic(ctx, vmId, portId, res.locals.user, idempotencyKey(req.get("idempotency-key"))));
  });

  return router;
}
