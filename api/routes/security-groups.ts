import { Router, type Request } from "express";
import type { ApiContext } from "../use-cases/context";
import { addRule, createSecurityGroup, deleteSecurityGroup, removeRule, requireSecurityGroup } from "../use-cases/security-groups";
import { presentRule, presentSecurityGroup } from "../network-presenters";
import { createSecurityGroupBody, securityGroupRuleBody } from "../network-schemas";
import { idParam } from "../schemas";
import { idempotencyKey, parse } from "../validate";
import { sendAccepted } from "./accepted";

export function securityGroupRoutes(ctx: ApiContext): Router {
  const router = Router();
  const key = (req: Request) => idempotencyKey(req.get("idempotency-key"));
  const groupIdOf = (req: Request) => parse(idParam, req.params.id, "security group id");
  const include = { rules: true, _count: { select: { ports: true } } } as const;

  router.post("/", async (req, res) => {
    const started = await createSecurityGroup(ctx, parse(createSecurityGroupBody, req.body, "body"), res.locals.user, key(req));
    sendAccepted(ctx.config, res, started, { securityGroupId: started.securityGroupId, securityGroup: `/v1/security-groups/${started.securityGroupId}` });
  });

  router.get("/", async (_req, res) => {
    res.json({ items: (await ctx.prisma.securityGroup.findMany({ orderBy: { createdAt: "asc" }, include })).map(presentSecurityGroup) });
  });

  router.get("/:id", async (req, res) => {
    const groupId = groupIdOf(req);
    await requireSecurityGroup(ctx, groupId);
    res.json(presentSecurityGroup(await ctx.prisma.securityGroup.findUniqueOrThrow({ where: { id: groupId }, include })));
  });

  router.delete("/:id", async (req, res) => {
    sendAccepted(ctx.config, res, await deleteSecurityGroup(ctx, groupIdOf(req), res.locals.user, key(req)));
  });

  router.get("/:id/rules", async (req, res) => {
    const groupId = groupIdOf(req);
    await requireSecurityGroup(ctx, groupId);
    const rules = await ctx.prisma.securityGroupRule.findMany({ where: { securityGroupId: groupId }, orderBy: { createdAt: "asc" } });
    res.json({ items: rules.map(presentRule) });
  });

  router.post("/:id/rules", async (req, res) => {
    const started = await addRule(ctx, groupIdOf(req), parse(securityGroupRuleBody, req.body, "body"), res.locals.user, key(req));
    sendAccepted(ctx.config, res, started, { ruleId: started.ruleId });
  });

  router.delete("/:id/rules/:ruleId", async (req, res) => {
    const ruleId = parse(idParam, req.params.ruleId, "rule id");
    sendAccepted(ctx.config, res, await removeRule(ctx, groupIdOf(req), ruleId, res.locals.user, key(req)));
  });

  return router;
}
