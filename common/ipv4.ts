/** IPv4 arithmetic for IPAM: addresses as unsigned 32-bit integers. */
import { randomBytes } from "node:crypto";

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function isIpv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => OCTET.test(p));
}

export function ipToInt(ip: string): number {
  if (!isIpv4(ip)) throw new Error(`not an IPv4 address: ${ip}`);
  return ip.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export interface Cidr {
  /** The network address, e.g. 10.0.0.0 */
  network: number;
  prefix: number;
  broadcast: number;
}

export function parseCidr(cidr: string): Cidr | null {
  const [address, prefixText, ...rest] = cidr.split("/");
  if (rest.length || !address || !prefixText || !/^\d{1,2}$/.test(prefixText) || !isIpv4(address)) return null;
  const prefix = Number(prefixText);
  if (prefix > 32) return null;
  const size = 2 ** (32 - prefix);
  const network = ipToInt(address);
  if (network % size !== 0) return null; // host bits set: 10.0.0.5/24 is not a network
  return { network, prefix, broadcast: network + size - 1 };
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ip >= cidr.network && ip <= cidr.broadcast;
}

/** A random locally administered unicast MAC (first octet xxxxxx10), as OpenStack and libvirt make them. */
export function randomMac(): string {
  const bytes = randomBytes(6);
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
}
