/**
 * Networks and ports in OVN's Northbound database. Each method is one OVSDB transaction (atomic:
 * a failure leaves nothing) and idempotent (a retry after a lost answer finds its own work):
 * creates are guarded by `wait` operations or unique names, deletes accept "already gone".
 */
import {
  map,
  mapEntries,
  namedUuid,
  set,
  setAtoms,
  uuid,
  OvsdbTransactionError,
  type OvsdbClient,
  type OvsdbCondition,
  type OvsdbOperation,
  type OvsdbResult,
  type OvsdbRow,
} from "./ovsdb-client";
import { localnetPortName, NB_DB, OWNER, OWNER_KEY, ownedIds, portGroupName, switchName } from "./nb-names";
import type { NetworkSpec, PortSpec } from "./specs";

const DHCP_LEASE_SECONDS = 3600;

export const byName = (name: string): OvsdbCondition[] => [["name", "==", name]];
export const byExternalId = (key: string, value: string): OvsdbCondition[] => [["external_ids", "includes", map({ [key]: value })]];

/** Asserts that the rows `where` selects in `table` exist (present) or do not (absent). */
export function guard(table: string, where: OvsdbCondition[], present: boolean): OvsdbOperation {
  return { op: "wait", table, where, columns: ["_uuid"], until: present ? "!=" : "==", rows: [], timeout: 0 };
}

export function prefixLength(cidr: string): number {
  return Number(cidr.split("/")[1]);
}

export interface NorthboundRow {
  table: string;
  uuid: string;
  externalIds: Record<string, string>;
}

/** The Northbound tables our rows live in (for the sweep that compares them with PostgreSQL). */
const OWNED_TABLES = [
  "Logical_Switch",
  "Logical_Switch_Port",
  "DHCP_Options",
  "DNS",
  "Port_Group",
  "ACL",
  "Logical_Router",
  "Logical_Router_Port",
  "Logical_Router_Static_Route",
  "NAT",
  "Gateway_Chassis",
];

export function createNorthbound(client: OvsdbClient) {
  const transact = (operations: OvsdbOperation[]) => client.transact(NB_DB, operations);
  const select = async (table: string, where: OvsdbCondition[], columns: string[]): Promise<OvsdbRow[]> => {
    const [result] = await transact([{ op: "select", table, where, columns }]);
    return (result as OvsdbResult).rows ?? [];
  };

  function dhcpOptions(network: NetworkSpec): OvsdbRow {
    const options: Record<string, string> = {
      lease_time: String(DHCP_LEASE_SECONDS),
      server_id: network.gateway,
      server_mac: network.dhcpServerMac,
      mtu: String(network.mtu),
    };
    // An isolated network has no router: its guests get no default route.
    if (network.type !== "isolated") options.router = network.gateway;
    if (network.dnsServers.length > 0) options.dns_server = `{${network.dnsServers.join(", ")}}`;
    return { cidr: network.cidr, options: map(options), external_ids: map(ownedIds({ "qx-network-id": network.id })) };
  }

  /** The DHCP_Options row of each network that has DHCP on, by network id. */
  async function dhcpRows(networkIds: string[]): Promise<Map<string, string>> {
    const wanted = new Set(networkIds);
    const rows = await select("DHCP_Options", byExternalId(OWNER_KEY, OWNER), ["_uuid", "external_ids"]);
    const found = new Map<string, string>();
    for (const row of rows) {
      const networkId = mapEntries(row.external_ids)["qx-network-id"];
      if (networkId && wanted.has(networkId)) found.set(networkId, (row._uuid as [string, string])[1]);
    }
    return found;
  }

  function portRow(port: PortSpec, dhcp: string | undefined): OvsdbRow {
    const address = `${port.mac} ${port.ip}`;
    const ids: Record<string, string> = { "qx-port-id": port.id, "qx-network-id": port.networkId };
    if (port.vmId) ids["qx-vm-id"] = port.vmId;
    if (port.dnsName) ids["qx-dns-name"] = port.dnsName;
    if (port.kind === "router") {
      return { name: port.id, type: "router", addresses: set(["router"]), options: map({ "router-port": port.routerPort! }), external_ids: map(ownedIds(ids)) };
    }
    return {
      name: port.id,
      addresses: set([address]),
      // The guest may send only from its own MAC and IP (anti-spoofing), DHCP aside.
      port_security: set([address]),
      options: map(port.requestedChassis ? { "requested-chassis": port.requestedChassis } : {}),
      ...(dhcp ? { dhcpv4_options: uuid(dhcp) } : {}),
      external_ids: map(ownedIds(ids)),
    };
  }

  /** The operations that insert `ports` into their switches, port groups and DNS tables. */
  function insertPortOperations(ports: PortSpec[], dhcp: Map<string, string>): OvsdbOperation[] {
    const operations: OvsdbOperation[] = [];
    const networks = [...new Set(ports.map((p) => p.networkId))];
    const groups = [...new Set(ports.flatMap((p) => p.securityGroupIds))];
    for (const networkId of networks) operations.push(guard("Logical_Switch", byName(switchName(networkId)), true));
    for (const groupId of groups) operations.push(guard("Port_Group", byName(portGroupName(groupId)), true));
    ports.forEach((port, i) => {
      operations.push({ op: "insert", table: "Logical_Switch_Port", "uuid-name": `p${i}`, row: portRow(port, dhcp.get(port.networkId)) });
    });
    for (const networkId of networks) {
      const refs = ports.flatMap((p, i) => (p.networkId === networkId ? [namedUuid(`p${i}`)] : []));
      operations.push({ op: "mutate", table: "Logical_Switch", where: byName(switchName(networkId)), mutations: [["ports", "insert", set(refs)]] });
      // A name resolves to its first port on the network (a VM's first NIC there); one already
      // recorded keeps its address (mutate-insert leaves existing keys alone).
      const records: Record<string, string> = {};
      for (const p of ports) if (p.networkId === networkId && p.dnsName && !(p.dnsName in records)) records[p.dnsName] = p.ip;
      if (Object.keys(records).length > 0) {
        operations.push({ op: "mutate", table: "DNS", where: byExternalId("qx-network-id", networkId), mutations: [["records", "insert", map(records)]] });
      }
    }
    for (const groupId of groups) {
      const refs = ports.flatMap((p, i) => (p.securityGroupIds.includes(groupId) ? [namedUuid(`p${i}`)] : []));
      operations.push({ op: "mutate", table: "Port_Group", where: byName(portGroupName(groupId)), mutations: [["ports", "insert", set(refs)]] });
    }
    return operations;
  }

  /** The switch ports that exist among `portIds` (one round trip: a select per name). */
  async function existingPorts(portIds: string[]): Promise<OvsdbRow[]> {
    if (portIds.length === 0) return [];
    const results = await transact(portIds.map((id) => ({ op: "select" as const, table: "Logical_Switch_Port", where: byName(id), columns: ["_uuid", "name", "addresses", "external_ids"] })));
    return results.flatMap((r) => r.rows ?? []);
  }

  return {
    /** The switch of a network, with its DHCP options, DNS table and (vlan, external) localnet port. */
    async createNetwork(network: NetworkSpec): Promise<void> {
      const name = switchName(network.id);
      const ids = ownedIds({ "qx-network-id": network.id, "qx-network-name": network.name });
      const operations: OvsdbOperation[] = [
        // Logical_Switch names are not unique in OVN: this guard is what makes a retry harmless.
        guard("Logical_Switch", byName(name), false),
        { op: "insert", table: "DNS", "uuid-name": "dns", row: { records: map({}), external_ids: map(ownedIds({ "qx-network-id": network.id })) } },
      ];
      if (network.dhcpEnabled) operations.push({ op: "insert", table: "DHCP_Options", row: dhcpOptions(network) });
      const ports = [];
      if (network.physicalNetwork) {
        operations.push({
          op: "insert",
          table: "Logical_Switch_Port",
          "uuid-name": "localnet",
          row: {
            name: localnetPortName(network.id),
            type: "localnet",
            addresses: set(["unknown"]),
            options: map({ network_name: network.physicalNetwork }),
            ...(network.vlanTag !== null ? { tag_request: network.vlanTag } : {}),
            external_ids: map(ownedIds({ "qx-network-id": network.id })),
          },
        });
        ports.push(namedUuid("localnet"));
      }
      operations.push({
        op: "insert",
        table: "Logical_Switch",
        row: { name, ports: set(ports), dns_records: set([namedUuid("dns")]), other_config: map({ mtu: String(network.mtu) }), external_ids: map(ids) },
      });
      try {
        await transact(operations);
      } catch (err) {
        if (err instanceof OvsdbTransactionError && err.guardFailed) return; // made by an earlier attempt
        throw err;
      }
    },

    /** Removes the network's switch (and with it every port on it), DHCP options and DNS table. */
    async deleteNetwork(networkId: string): Promise<void> {
      await transact([
        { op: "delete", table: "Logical_Switch", where: byName(switchName(networkId)) },
        { op: "delete", table: "DHCP_Options", where: byExternalId("qx-network-id", networkId) },
        { op: "delete", table: "DNS", where: byExternalId("qx-network-id", networkId) },
      ]);
    },

    /** Adds ports (on any networks) in one transaction; a retry after success changes nothing. */
    async createPorts(ports: PortSpec[]): Promise<void> {
      if (ports.length === 0) return;
      const dhcp = await dhcpRows([...new Set(ports.map((p) => p.networkId))]);
      try {
        await transact(insertPortOperations(ports, dhcp));
      } catch (err) {
        // Port names are unique: an earlier attempt that committed makes this one fail at commit.
        const already = err instanceof OvsdbTransactionError && err.operationIndex === null ? await existingPorts(ports.map((p) => p.id)) : [];
        if (already.length === ports.length) return;
        throw err;
      }
    },

    /** Removes ports from their switches, port groups and DNS tables in one transaction. Gone is fine. */
    async deletePorts(portIds: string[]): Promise<void> {
      const rows = await existingPorts(portIds);
      if (rows.length === 0) return;
      const operations: OvsdbOperation[] = [];
      for (const row of rows) {
        const portUuid = uuid((row._uuid as [string, string])[1]);
        // Switch ports are children of their switch: dropping the reference deletes them.
        operations.push({ op: "mutate", table: "Logical_Switch", where: [["ports", "includes", portUuid]], mutations: [["ports", "delete", set([portUuid])]] });
        const ids = mapEntries(row.external_ids);
        const address = String(setAtoms(row.addresses)[0] ?? "").split(" ")[1];
        if (ids["qx-dns-name"] && address) {
          operations.push({
            op: "mutate",
            table: "DNS",
            where: byExternalId("qx-network-id", ids["qx-network-id"]!),
            mutations: [["records", "delete", map({ [ids["qx-dns-name"]]: address })]],
          });
        }
      }
      // Port groups refer to ports weakly: OVSDB drops those references itself.
      await transact(operations);
    },

    /** Sets the security groups of a port: its port-group memberships, in one transaction. */
    async setPortSecurityGroups(portId: string, from: string[], to: string[]): Promise<void> {
      const [row] = await select("Logical_Switch_Port", byName(portId), ["_uuid"]);
      if (!row) throw new OvsdbTransactionError("not found", `no logical switch port ${portId}`, 0);
      const portUuid = uuid((row._uuid as [string, string])[1]);
      const operations: OvsdbOperation[] = [];
      for (const groupId of to) operations.push(guard("Port_Group", byName(portGroupName(groupId)), true));
      for (const groupId of from.filter((g) => !to.includes(g))) {
        operations.push({ op: "mutate", table: "Port_Group", where: byName(portGroupName(groupId)), mutations: [["ports", "delete", set([portUuid])]] });
      }
      for (const groupId of to) {
        operations.push({ op: "mutate", table: "Port_Group", where: byName(portGroupName(groupId)), mutations: [["ports", "insert", set([portUuid])]] });
      }
      await transact(operations);
    },

    /** Moves a port's binding to another host (live migration): one update of requested-chassis. */
    async setRequestedChassis(portId: string, hostId: string): Promise<void> {
      await transact([
        guard("Logical_Switch_Port", byName(portId), true),
        { op: "mutate", table: "Logical_Switch_Port", where: byName(portId), mutations: [["options", "delete", set(["requested-chassis"])]] },
        { op: "mutate", table: "Logical_Switch_Port", where: byName(portId), mutations: [["options", "insert", map({ "requested-chassis": hostId })]] },
      ]);
    },

    /** Every row Quantix owns, in every table it writes (what a cleanup sweep compares with PostgreSQL). */
    async ownedRows(): Promise<NorthboundRow[]> {
      const results = await transact(OWNED_TABLES.map((table) => ({ op: "select" as const, table, where: byExternalId(OWNER_KEY, OWNER), columns: ["_uuid", "external_ids"] })));
      return results.flatMap((result, i) =>
        (result.rows ?? []).map((row) => ({ table: OWNED_TABLES[i]!, uuid: (row._uuid as [string, string])[1], externalIds: mapEntries(row.external_ids) })),
      );
    },

    transact,
    select,
  };
}

export type Northbound = ReturnType<typeof createNorthbound>;
