import type { NetState, PrismaClient, SecurityGroupRule } from "@prisma/client";
import { permanentFailure } from "../../common/errors";
import type { RuleProtocol, SecurityGroupRuleSpec, SecurityGroupSpec } from "../ovn/specs";

function ruleSpec(rule: SecurityGroupRule): SecurityGroupRuleSpec {
  return {
    id: rule.id,
    direction: rule.direction,
    protocol: rule.protocol as RuleProtocol,
    portMin: rule.portMin,
    portMax: rule.portMax,
    remoteCidr: rule.remoteCidr,
    remoteGroupId: rule.remoteGroupId,
  };
}

/**
 * Security groups and their rules. A rule change is recorded by the API as rows in transition
 * (a new rule CREATING, a removed one DELETING); the workflow writes OVN as `after` (what the
 * group becomes), can put it back as `before`, and then commits or rolls back the rows.
 */
export function createSecurityGroupRecordActivities(prisma: PrismaClient) {
  return {
    async loadSecurityGroupChange(groupId: string): Promise<{ state: NetState; before: SecurityGroupSpec; after: SecurityGroupSpec }> {
      const group = await prisma.securityGroup.findUnique({ where: { id: groupId }, include: { rules: { orderBy: { createdAt: "asc" } } } });
      if (!group) throw permanentFailure("NOT_FOUND", `security group ${groupId} does not exist`);
      const spec = (states: NetState[]) => ({ id: group.id, name: group.name, rules: group.rules.filter((r) => states.includes(r.state)).map(ruleSpec) });
      return { state: group.state, before: spec(["ACTIVE", "DELETING"]), after: spec(["ACTIVE", "CREATING"]) };
    },

    /** createSecurityGroup's record: the group and its first rules are in OVN. */
    async securityGroupCreated(groupId: string): Promise<void> {
      await prisma.$transaction([
        prisma.securityGroupRule.updateMany({ where: { securityGroupId: groupId }, data: { state: "ACTIVE" } }),
        prisma.securityGroup.updateMany({ where: { id: groupId }, data: { state: "ACTIVE" } }),
      ]);
    },

    async securityGroupStateChanged(input: { groupId: string; state: NetState }): Promise<void> {
      await prisma.securityGroup.updateMany({ where: { id: input.groupId }, data: { state: input.state } });
    },

    async securityGroupDeleted(groupId: string): Promise<void> {
      await prisma.securityGroup.deleteMany({ where: { id: groupId } });
    },

    /** The rule change is in OVN: new rules ACTIVE, removed ones gone. */
    async ruleChangesCommitted(groupId: string): Promise<void> {
      await prisma.$transaction([
        prisma.securityGroupRule.deleteMany({ where: { securityGroupId: groupId, state: "DELETING" } }),
        prisma.securityGroupRule.updateMany({ where: { securityGroupId: groupId, state: "CREATING" }, data: { state: "ACTIVE" } }),
      ]);
    },

    /** The rule change was undone in OVN: the rules are as before it. */
    async ruleChangesRolledBack(groupId: string): Promise<void> {
      await prisma.$transaction([
        prisma.securityGroupRule.deleteMany({ where: { securityGroupId: groupId, state: "CREATING" } }),
        prisma.securityGroupRule.updateMany({ where: { securityGroupId: groupId, state: "DELETING" }, data: { state: "ACTIVE" } }),
      ]);
    },
  };
}
