import { randomUUID } from "node:crypto";
import type { SecurityGroup } from "@prisma/client";
import type { SecurityGroupInput } from "../../workflows/create-security-group";
import type { SecurityGroupRuleBody } from "../network-schemas";
import { ApiError } from "../problem";
import type { ApiContext } from "./context";
import { startOperation, type StartedOperation } from "./start-operation";

export async function requireSecurityGroup(ctx: ApiContext, groupId: string): Promise<SecurityGroup> {
  const group = await ctx.prisma.securityGroup.findUnique({ where: { id: groupId } });
  if (!group) throw new ApiError("NOT_FOUND", `security group ${groupId} does not exist`);
  return group;
}

const start = (ctx: ApiContext, group: { id: string; name: string }, type: "create-security-group" | "delete-security-group" | "update-security-group-rules", workflowType: string, summary: string) =>
  (user: string, idempotencyKey: string | undefined, requestBody: unknown, inTransaction?: Parameters<typeof startOperation>[1]["inTransaction"]) =>
    startOperation(ctx, {
      type,
      targetType: "security-group",
      targetId: group.id,
      requestedBy: user,
      idempotencyKey,
      requestBody,
      workflowType,
      workflowArgs: (operationId): [SecurityGroupInput] => [{ operationId, groupId: group.id }],
      summary,
      searchAttributes: [],
      inTransaction,
    });

/** A new group denies all ingress and allows all egress (its one rule), as OpenStack's do. */
export async function createSecurityGroup(ctx: ApiContext, body: { name: string; description: string }, user: string, idempotencyKey?: string): Promise<StartedOperation & { securityGroupId: string }> {
  const groupId = randomUUID();
  const started = await start(ctx, { id: groupId, name: body.name }, "create-security-group", "createSecurityGroup", `Create security group ${body.name}`)(user, idempotencyKey, body, async (tx) => {
    await tx.securityGroup.create({
      data: { id: groupId, name: body.name, description: body.description, rules: { create: [{ id: randomUUID(), direction: "egress", protocol: "any" }] } },
    });
  });
  return { ...started, securityGroupId: started.operation.targetId };
}

export async function deleteSecurityGroup(ctx: ApiContext, groupId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const group = await requireSecurityGroup(ctx, groupId);
  return start(ctx, group, "delete-security-group", "deleteSecurityGroup", `Delete security group ${group.name}`)(user, idempotencyKey, {}, async (tx) => {
    await tx.$queryRaw`SELECT id FROM "SecurityGroup" WHERE id = ${groupId} FOR UPDATE`;
    const ports = await tx.portSecurityGroup.count({ where: { securityGroupId: groupId } });
    const naming = await tx.securityGroupRule.count({ where: { remoteGroupId: groupId, securityGroupId: { not: groupId } } });
    if (ports || naming) throw new ApiError("SECURITY_GROUP_IN_USE", `security group ${groupId} has ${ports} port(s) and is the remote group of ${naming} rule(s) of other groups`);
    await tx.securityGroup.update({ where: { id: groupId }, data: { state: "DELETING" } });
  });
}

function checkGroupActive(group: SecurityGroup): void {
  if (group.state !== "ACTIVE") throw new ApiError("CONFLICT", `security group ${group.id} is ${group.state}`);
}

/** Adds a rule: one Northbound transaction on the group's ACLs applies it to all its ports. */
export async function addRule(ctx: ApiContext, groupId: string, rule: SecurityGroupRuleBody, user: string, idempotencyKey?: string): Promise<StartedOperation & { ruleId: string }> {
  const group = await requireSecurityGroup(ctx, groupId);
  checkGroupActive(group);
  if (rule.remoteGroupId) {
    const remote = await ctx.prisma.securityGroup.findUnique({ where: { id: rule.remoteGroupId } });
    if (!remote || remote.state !== "ACTIVE") throw new ApiError("VALIDATION_FAILED", `no usable security group ${rule.remoteGroupId}`);
  }
  const ruleId = randomUUID();
  const started = await start(ctx, group, "update-security-group-rules", "updateSecurityGroupRules", `Add a ${rule.direction} rule to security group ${group.name}`)(
    user,
    idempotencyKey,
    { add: rule },
    async (tx) => {
      await tx.securityGroupRule.create({
        data: {
          id: ruleId,
          securityGroupId: groupId,
          direction: rule.direction,
          protocol: rule.protocol,
          portMin: rule.portMin ?? null,
          portMax: rule.portMax ?? null,
          remoteCidr: rule.remoteCidr ?? null,
          remoteGroupId: rule.remoteGroupId ?? null,
        },
      });
    },
  );
  return { ...started, ruleId };
}

export async function removeRule(ctx: ApiContext, groupId: string, ruleId: string, user: string, idempotencyKey?: string): Promise<StartedOperation> {
  const group = await requireSecurityGroup(ctx, groupId);
  checkGroupActive(group);
  const rule = await ctx.prisma.securityGroupRule.findUnique({ where: { id: ruleId } });
  if (!rule || rule.securityGroupId !== groupId) throw new ApiError("NOT_FOUND", `security group ${groupId} has no rule ${ruleId}`);
  return start(ctx, group, "update-security-group-rules", "updateSecurityGroupRules", `Remove rule ${ruleId} from security group ${group.name}`)(
    user,
    idempotencyKey,
    { remove: ruleId },
    async (tx) => {
      await tx.securityGroupRule.update({ where: { id: ruleId }, data: { state: "DELETING" } });
    },
  );
}
