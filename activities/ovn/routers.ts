/**
 * Routers as OVN logical routers. A router is written whole from its spec: its legs (router ports
 * with their switch-side patch ports), the gateway leg bound to gateway chassis (a distributed
 * gateway port: where SNAT and floating IPs happen), the default route and its SNAT rules. Floating
 * IPs' NAT rules belong to the floating IPs: a router write keeps them, and moveFloatingIp deletes
 * one router's rule and inserts the other's in one transaction, so a floating IP that moves never
 * exists twice or not at all. Router rows are changed by compare-and-swap (a `wait` on what was
 * read): a concurrent writer makes the transaction fail and be recomputed, never mix.
 */
import { intToIp, ipToInt } from "../../common/ipv4";
import { map, mapEntries, namedUuid, set, uuid, OvsdbTransactionError, type OvsdbOperation, type OvsdbRow } from "./ovsdb-client";
import { ownedIds, routerName, routerPortName, switchName } from "./nb-names";
import { byExternalId, byName, guard, type Northbound } from "./northbound";
import type { FloatingIpMove, RouterLegSpec, RouterSpec } from "./specs";

const uuidOf = (row: OvsdbRow) => (row._uuid as [string, string])[1];

function networkCidr(leg: RouterLegSpec): string {
  const size = 2 ** (32 - leg.prefixLength);
  return `${intToIp(Math.floor(ipToInt(leg.ip) / size) * size)}/${leg.prefixLength}`;
}

function snatRows(router: RouterSpec): OvsdbRow[] {
  if (!router.gateway || !router.snat) return [];
  return router.interfaces.map((leg) => ({
    type: "snat",
    external_ip: router.gateway!.ip,
    logical_ip: networkCidr(leg),
    external_ids: map(ownedIds({ "qx-router-id": router.id, "qx-port-id": leg.portId })),
  }));
}

const FLOATING_KEY = "qx-floating-ip-id";

export function createRouterWriter(nb: Northbound) {
  async function sync(routers: RouterSpec[], removed: string[], attempt = 0): Promise<void> {
    const operations: OvsdbOperation[] = [];
    let named = 0;
    const name = (prefix: string) => `${prefix}${named++}`;

    for (const routerId of removed) {
      operations.push({ op: "delete", table: "Logical_Router", where: byName(routerName(routerId)) });
      for (const lsp of await nb.select("Logical_Switch_Port", byExternalId("qx-router-id", routerId), ["_uuid"])) {
        const ref = uuid(uuidOf(lsp));
        operations.push({ op: "mutate", table: "Logical_Switch", where: [["ports", "includes", ref]], mutations: [["ports", "delete", set([ref])]] });
      }
    }

    for (const router of routers) {
      const lrName = routerName(router.id);
      const [current] = await nb.select("Logical_Router", byName(lrName), ["_uuid", "ports", "nat", "static_routes"]);
      const legs = [...(router.gateway ? [router.gateway] : []), ...router.interfaces];
      const currentPorts = current ? await nb.select("Logical_Router_Port", byExternalId("qx-router-id", router.id), ["_uuid", "name"]) : [];
      const portUuids = new Map(currentPorts.map((row) => [String(row.name), uuidOf(row)]));

      const portRefs = legs.map((leg) => {
        const lrpName = routerPortName(leg.portId);
        const existing = portUuids.get(lrpName);
        if (existing) return uuid(existing);
        const chassis = router.gateway && leg.portId === router.gateway.portId ? router.gateway.chassis : [];
        const gatewayRefs = chassis.map((chassisName, i) => {
          const gc = name("gc");
          operations.push({
            op: "insert",
            table: "Gateway_Chassis",
            "uuid-name": gc,
            row: { name: `${lrpName}-${chassisName}`, chassis_name: chassisName, priority: chassis.length - i, external_ids: map(ownedIds({ "qx-router-id": router.id })) },
          });
          return namedUuid(gc);
        });
        const lrp = name("lrp");
        operations.push({
          op: "insert",
          table: "Logical_Router_Port",
          "uuid-name": lrp,
          row: {
            name: lrpName,
            mac: leg.mac,
            networks: set([`${leg.ip}/${leg.prefixLength}`]),
            gateway_chassis: set(gatewayRefs),
            external_ids: map(ownedIds({ "qx-router-id": router.id, "qx-port-id": leg.portId, "qx-network-id": leg.networkId })),
          },
        });
        return namedUuid(lrp);
      });
      const floating = current ? (await nb.select("NAT", byExternalId("qx-router-id", router.id), ["_uuid", "external_ids"])).filter((r) => mapEntries(r.external_ids)[FLOATING_KEY]) : [];
      const natRefs = [
        ...floating.map((r) => uuid(uuidOf(r))),
        ...snatRows(router).map((row) => {
          const nat = name("nat");
          operations.push({ op: "insert", table: "NAT", "uuid-name": nat, row });
          return namedUuid(nat);
        }),
      ];
      const routeRefs = router.gateway
        ? [(() => {
            const route = name("route");
            operations.push({ op: "insert", table: "Logical_Router_Static_Route", "uuid-name": route, row: { ip_prefix: "0.0.0.0/0", nexthop: router.gateway.nexthop, external_ids: map(ownedIds({ "qx-router-id": router.id })) } });
            return namedUuid(route);
          })()]
        : [];
      const row = { ports: set(portRefs), nat: set(natRefs), static_routes: set(routeRefs) };
      if (current) {
        // Compare-and-swap on what was read; SNAT rules and routes are replaced whole (the old ones
        // are children of the router and go when it stops referring to them).
        operations.push({ op: "wait", table: "Logical_Router", where: byName(lrName), columns: ["ports", "nat", "static_routes"], until: "==", rows: [{ ports: current.ports!, nat: current.nat!, static_routes: current.static_routes! }], timeout: 0 });
        operations.push({ op: "update", table: "Logical_Router", where: byName(lrName), row });
      } else {
        operations.push(guard("Logical_Router", byName(lrName), false));
        operations.push({ op: "insert", table: "Logical_Router", row: { name: lrName, ...row, external_ids: map(ownedIds({ "qx-router-id": router.id, "qx-router-name": router.name })) } });
      }

      // The switch side of each leg: a router-type port patched to the router port.
      const switchPorts = await nb.select("Logical_Switch_Port", byExternalId("qx-router-id", router.id), ["_uuid", "name"]);
      const have = new Map(switchPorts.map((r) => [String(r.name), uuidOf(r)]));
      for (const leg of legs) {
        if (have.has(leg.portId)) continue;
        const lsp = name("lsp");
        const isGateway = router.gateway?.portId === leg.portId;
        operations.push(guard("Logical_Switch", byName(switchName(leg.networkId)), true));
        operations.push({
          op: "insert",
          table: "Logical_Switch_Port",
          "uuid-name": lsp,
          row: {
            name: leg.portId,
            type: "router",
            addresses: set(["router"]),
            // The gateway leg answers ARP for (and announces) the router's NAT addresses on the external network.
            options: map({ "router-port": routerPortName(leg.portId), ...(isGateway ? { "nat-addresses": "router" } : {}) }),
            external_ids: map(ownedIds({ "qx-router-id": router.id, "qx-port-id": leg.portId, "qx-network-id": leg.networkId })),
          },
        });
        operations.push({ op: "mutate", table: "Logical_Switch", where: byName(switchName(leg.networkId)), mutations: [["ports", "insert", set([namedUuid(lsp)])]] });
      }
      for (const [portName, portUuid] of have) {
        if (legs.some((leg) => leg.portId === portName)) continue;
        const ref = uuid(portUuid);
        operations.push({ op: "mutate", table: "Logical_Switch", where: [["ports", "includes", ref]], mutations: [["ports", "delete", set([ref])]] });
      }
    }
    if (operations.length === 0) return;
    try {
      await nb.transact(operations);
    } catch (err) {
      if (err instanceof OvsdbTransactionError && err.guardFailed && attempt < 5) return sync(routers, removed, attempt + 1);
      throw err;
    }
  }
  /** Moves a floating IP's NAT rule between routers (or in, or out) in one transaction. Idempotent. */
  async function moveFloatingIp(move: FloatingIpMove): Promise<void> {
    const operations: OvsdbOperation[] = [];
    const existing = await nb.select("NAT", byExternalId(FLOATING_KEY, move.floatingIpId), ["_uuid", "external_ids", "logical_ip"]);
    const target = move.to;
    const inPlace = (row: OvsdbRow) => target && mapEntries(row.external_ids)["qx-router-id"] === target.routerId && row.logical_ip === target.logicalIp;
    if (existing.length === 1 && inPlace(existing[0]!)) return; // an earlier attempt committed
    for (const row of existing) {
      const ref = uuid(uuidOf(row));
      operations.push({ op: "mutate", table: "Logical_Router", where: [["nat", "includes", ref]], mutations: [["nat", "delete", set([ref])]] });
    }
    if (target) {
      operations.push(guard("Logical_Router", byName(routerName(target.routerId)), true));
      operations.push({
        op: "insert",
        table: "NAT",
        "uuid-name": "fip",
        row: {
          type: "dnat_and_snat",
          external_ip: move.externalIp,
          logical_ip: target.logicalIp,
          external_ids: map(ownedIds({ "qx-router-id": target.routerId, [FLOATING_KEY]: move.floatingIpId })),
        },
      });
      operations.push({ op: "mutate", table: "Logical_Router", where: byName(routerName(target.routerId)), mutations: [["nat", "insert", set([namedUuid("fip")])]] });
    }
    if (operations.length) await nb.transact(operations);
  }

  return { sync, moveFloatingIp };
}

