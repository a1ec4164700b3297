/**
 * Security groups as OVN port groups with ACLs, as OpenStack's OVN driver does. Each group's port
 * group carries, besides one allow-related ACL per rule (priority 1002), its own drop ACLs for IP
 * in both directions (1001) and an allow for DHCP requests: a port in several groups is allowed
 * what any of them allows (the union of allows beats the drops), and everything else is dropped:
 * ingress is denied unless a rule allows it; egress is allowed by the rule each new group gets.
 * Remote groups match OVN's address set of the remote port group ($<port group>_ip4, which OVN
 * keeps from its ports' addresses), so membership changes need no rule rewrite.
 * A rule change is one transaction on the group's ACLs, and so applies to all its ports at once.
 */
import { namedUuid, map, mapEntries, set, uuid, OvsdbTransactionError, type OvsdbOperation, type OvsdbRow } from "./ovsdb-client";
import { ownedIds, portGroupName } from "./nb-names";
import { byExternalId, byName, guard, type Northbound } from "./northbound";
import type { SecurityGroupRuleSpec, SecurityGroupSpec } from "./specs";

const RULE_PRIORITY = 1002;
const DROP_PRIORITY = 1001;

interface AclRow {
  key: string;
  row: OvsdbRow;
}

export function ruleMatch(groupId: string, rule: SecurityGroupRuleSpec): string {
  const ingress = rule.direction === "ingress";
  const parts = [`${ingress ? "outport" : "inport"} == @${portGroupName(groupId)}`, "ip4"];
  const remote = ingress ? "ip4.src" : "ip4.dst";
  if (rule.remoteCidr) parts.push(`${remote} == ${rule.remoteCidr}`);
  if (rule.remoteGroupId) parts.push(`${remote} == $${portGroupName(rule.remoteGroupId)}_ip4`);
  if (rule.protocol === "icmp") parts.push("icmp4");
  if (rule.protocol === "tcp" || rule.protocol === "udp") {
    parts.push(rule.protocol);
    if (rule.portMin !== null) {
      const max = rule.portMax ?? rule.portMin;
      parts.push(max === rule.portMin ? `${rule.protocol}.dst == ${rule.portMin}` : `${rule.protocol}.dst >= ${rule.portMin} && ${rule.protocol}.dst <= ${max}`);
    }
  }
  return parts.join(" && ");
}

/** The ACLs a group's port group holds, each keyed by what it stands for (a rule id, or a base ACL). */
export function groupAcls(group: SecurityGroupSpec): AclRow[] {
  const pg = portGroupName(group.id);
  const acl = (key: string, direction: "from-lport" | "to-lport", priority: number, match: string, action: string): AclRow => ({
    key,
    row: { direction, priority, match, action, external_ids: map(ownedIds({ "qx-security-group-id": group.id, "qx-acl": key })) },
  });
  return [
    acl("drop-egress", "from-lport", DROP_PRIORITY, `inport == @${pg} && ip`, "drop"),
    acl("drop-ingress", "to-lport", DROP_PRIORITY, `outport == @${pg} && ip`, "drop"),
    // OVN's own DHCP server answers in the pipeline after the ACLs: the request must get through.
    acl("dhcp", "from-lport", RULE_PRIORITY, `inport == @${pg} && udp && udp.src == 68 && udp.dst == 67`, "allow"),
    ...group.rules.map((rule) => acl(rule.id, rule.direction === "ingress" ? "to-lport" : "from-lport", RULE_PRIORITY, ruleMatch(group.id, rule), "allow-related")),
  ];
}

export function createSecurityGroupWriter(nb: Northbound) {
  async function sync(group: SecurityGroupSpec, attempt = 0): Promise<void> {
    const name = portGroupName(group.id);
    const wanted = groupAcls(group);
    const [pg] = await nb.select("Port_Group", byName(name), ["_uuid", "acls"]);
    const operations: OvsdbOperation[] = [];
    if (!pg) {
      wanted.forEach((acl, i) => operations.push({ op: "insert", table: "ACL", "uuid-name": `acl${i}`, row: acl.row }));
      operations.push(guard("Port_Group", byName(name), false), {
        op: "insert",
        table: "Port_Group",
        row: { name, acls: set(wanted.map((_, i) => namedUuid(`acl${i}`))), external_ids: map(ownedIds({ "qx-security-group-id": group.id, "qx-security-group-name": group.name })) },
      });
    } else {
      const current = await nb.select("ACL", byExternalId("qx-security-group-id", group.id), ["_uuid", "external_ids", "match"]);
      const have = new Map(current.map((row) => [`${mapEntries(row.external_ids)["qx-acl"]}|${row.match}`, (row._uuid as [string, string])[1]]));
      const keep = new Set<string>();
      const added: OvsdbOperation[] = [];
      wanted.forEach((acl, i) => {
        const existing = have.get(`${acl.key}|${acl.row.match}`);
        if (existing) keep.add(existing);
        else added.push({ op: "insert", table: "ACL", "uuid-name": `acl${i}`, row: acl.row });
      });
      const removed = [...have.values()].filter((u) => !keep.has(u));
      if (added.length === 0 && removed.length === 0) return;
      // Compare-and-swap: the group's ACL set is still what was read, or nothing is written.
      operations.push({ op: "wait", table: "Port_Group", where: byName(name), columns: ["acls"], until: "==", rows: [{ acls: pg.acls! }], timeout: 0 }, ...added);
      const mutations: [string, "insert" | "delete", ReturnType<typeof set>][] = [];
      if (added.length) mutations.push(["acls", "insert", set(added.map((op) => namedUuid((op as { "uuid-name": string })["uuid-name"])))]);
      if (removed.length) mutations.push(["acls", "delete", set(removed.map(uuid))]);
      operations.push({ op: "mutate", table: "Port_Group", where: byName(name), mutations });
    }
    try {
      await nb.transact(operations);
    } catch (err) {
      // Another writer got in between the read and the write: read again (a few times).
      if (err instanceof OvsdbTransactionError && err.guardFailed && attempt < 5) return sync(group, attempt + 1);
      throw err;
    }
  }

  return {
    sync,
    /** Deletes the group's port group; its ACLs go with it (they are its children). */
    async remove(groupId: string): Promise<void> {
      await nb.transact([{ op: "delete", table: "Port_Group", where: byName(portGroupName(groupId)) }]);
    },
  };
}
