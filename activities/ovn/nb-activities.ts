/**
 * The control plane's activities on OVN's Northbound database. Each is one transaction (see
 * northbound.ts); failures are typed: a connection that fails is OVN_UNAVAILABLE and retried, a
 * transaction the database refuses is OVN_ERROR and is not (it would be refused again).
 */
import { permanentFailure, transientFailure } from "../../common/errors";
import type { Northbound } from "./northbound";
import { OvsdbConnectionError, OvsdbTransactionError } from "./ovsdb-client";
import type { FloatingIpMove, NetworkSpec, PortSpec, RouterSpec, SecurityGroupSpec } from "./specs";
import { createSecurityGroupWriter } from "./security-groups";
import { createRouterWriter } from "./routers";

async function typed<T>(what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (err instanceof OvsdbConnectionError) throw transientFailure("OVN_UNAVAILABLE", `${what}: ${err.message}`);
    if (err instanceof OvsdbTransactionError) throw permanentFailure("OVN_ERROR", `${what}: ${err.message}`);
    throw err;
  }
}

export function createNetworkActivities(nb: Northbound) {
  const groups = createSecurityGroupWriter(nb);
  const routers = createRouterWriter(nb);
  return {
    nbCreateNetwork: (network: NetworkSpec) => typed(`create network ${network.id}`, () => nb.createNetwork(network)),
    nbDeleteNetwork: (networkId: string) => typed(`delete network ${networkId}`, () => nb.deleteNetwork(networkId)),
    nbCreatePorts: (ports: PortSpec[]) => typed(`create ports ${ports.map((p) => p.id).join(", ")}`, () => nb.createPorts(ports)),
    nbDeletePorts: (portIds: string[]) => typed(`delete ports ${portIds.join(", ")}`, () => nb.deletePorts(portIds)),
    nbSetPortSecurityGroups: (input: { portId: string; from: string[]; to: string[] }) =>
      typed(`set security groups of port ${input.portId}`, () => nb.setPortSecurityGroups(input.portId, input.from, input.to)),
    /** For live migration: the port may be claimed by the destination host's chassis. */
    nbSetRequestedChassis: (input: { portId: string; hostId: string }) =>
      typed(`move port ${input.portId} to ${input.hostId}`, () => nb.setRequestedChassis(input.portId, input.hostId)),
    nbSyncSecurityGroup: (group: SecurityGroupSpec) => typed(`write security group ${group.id}`, () => groups.sync(group)),
    nbDeleteSecurityGroup: (groupId: string) => typed(`delete security group ${groupId}`, () => groups.remove(groupId)),
    /** Writes routers as given (their legs, SNAT, floating IPs) and removes others, all in one transaction. */
    nbSyncRouters: (input: { routers: RouterSpec[]; removed: string[] }) =>
      typed(`write routers ${[...input.routers.map((r) => r.id), ...input.removed].join(", ")}`, () => routers.sync(input.routers, input.removed)),
    /** Deletes routers (with their ports, routes, NAT rules) and their switch-side patch ports. */
    nbDeleteRouter: (routerId: string) => typed(`delete router ${routerId}`, () => routers.sync([], [routerId])),
    /** A floating IP's NAT rule from one router (or none) to another (or none), atomically. */
    nbMoveFloatingIp: (move: FloatingIpMove) => typed(`move floating IP ${move.floatingIpId}`, () => routers.moveFloatingIp(move)),
    /** The undo of a move: the same transaction, back (an activity of its own, as a failed move and its undo are two things). */
    nbRestoreFloatingIp: (move: FloatingIpMove) => typed(`put floating IP ${move.floatingIpId} back`, () => routers.moveFloatingIp(move)),
  };
}

export type NetworkActivities = ReturnType<typeof createNetworkActivities>;
