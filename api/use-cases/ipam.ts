/**
 * IP and MAC address management, inside the API transaction that records the operation (before any
 * side effect). The network's row is locked (FOR UPDATE) so allocations on one network are
 * serialised; the unique indexes on Port (mac; networkId + ip) are the last word either way.
 */
import { randomUUID } from "node:crypto";
import type { Network, Prisma, PortOwner } from "@prisma/client";
import { cidrContains, intToIp, ipToInt, parseCidr, randomMac } from "../../common/ipv4";
import { ApiError } from "../problem";

export interface ReservedRange {
  start: string;
  end: string;
}

export interface AddressRequest {
  /** A fixed address, or the lowest free one. */
  ip?: string;
  owner: PortOwner;
  /** The port's id when the caller chose it already (it names the operation's workflow). */
  portId?: string;
}

export interface AllocatedAddress {
  portId: string;
  ip: string;
  mac: string;
}

/** Why an address of the network may not be handed out, or null when it may. */
function unusable(network: Network, ip: number, owner: PortOwner): string | null {
  const cidr = parseCidr(network.cidr)!;
  if (!cidrContains(cidr, ip)) return `is outside ${network.cidr}`;
  if (ip === cidr.network || ip === cidr.broadcast) return "is the network's own or broadcast address";
  // The gateway address belongs to the router's leg on the network (and OVN's DHCP server).
  if (ip === ipToInt(network.gateway) && owner !== "ROUTER_INTERFACE") return "is the network's gateway";
  for (const range of network.reservedRanges as unknown as ReservedRange[]) {
    if (ip >= ipToInt(range.start) && ip <= ipToInt(range.end)) return `is in the reserved range ${range.start}-${range.end}`;
  }
  return null;
}

/** Locks the network and hands out one address per request, with a fresh port id and MAC each. */
export async function allocateAddresses(tx: Prisma.TransactionClient, networkId: string, requests: AddressRequest[]): Promise<AllocatedAddress[]> {
  const [locked] = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM "Network" WHERE id = ${networkId} FOR UPDATE`;
  if (!locked) throw new ApiError("VALIDATION_FAILED", `network ${networkId} does not exist`);
  const network = await tx.network.findUniqueOrThrow({ where: { id: networkId } });
  if (network.state === "DELETING" || network.state === "FAILED") throw new ApiError("CONFLICT", `network ${networkId} is ${network.state}`);
  const used = new Set((await tx.$queryRaw<{ ip: string }[]>`SELECT ip FROM "Port" WHERE "networkId" = ${networkId}`).map((p) => ipToInt(p.ip)));
  const cidr = parseCidr(network.cidr)!;
  const macs = await freshMacs(tx, requests.length);
  let cursor = cidr.network + 1;
  return requests.map((request, i) => {
    let ip: number;
    if (request.ip !== undefined) {
      ip = ipToInt(request.ip);
      const why = unusable(network, ip, request.owner);
      if (why) throw new ApiError("VALIDATION_FAILED", `address ${request.ip} ${why}`);
      if (used.has(ip)) throw new ApiError("ADDRESS_IN_USE", `address ${request.ip} is in use on network ${networkId}`);
    } else {
      while (cursor < cidr.broadcast && (used.has(cursor) || unusable(network, cursor, request.owner))) cursor++;
      if (cursor >= cidr.broadcast) throw new ApiError("ADDRESS_EXHAUSTED", `network ${networkId} (${network.cidr}) has no free address left`);
      ip = cursor;
    }
    used.add(ip);
    return { portId: request.portId ?? randomUUID(), ip: intToIp(ip), mac: macs[i]! };
  });
}

/** MACs not yet on any port (a random 46-bit collision is unlikely; the unique index makes it impossible). */
async function freshMacs(tx: Prisma.TransactionClient, count: number): Promise<string[]> {
  const macs = new Set<string>();
  while (macs.size < count) {
    const batch = Array.from({ length: count - macs.size }, randomMac).filter((m) => !macs.has(m));
    const taken = new Set((await tx.$queryRaw<{ mac: string }[]>`SELECT mac FROM "Port" WHERE mac = ANY(${batch}::text[])`).map((p) => p.mac));
    for (const mac of batch) if (!taken.has(mac)) macs.add(mac);
  }
  return [...macs];
}
