import ipaddr from "ipaddr.js";

/**
 * The outbound fetch policy: which addresses a host worker may connect to when it downloads what a
 * user named (image URLs, their redirects, published sums files). A download is a request the
 * platform makes on the user's behalf from inside the data centre, so without a policy any user could
 * read the Temporal UI, the API, a cloud metadata service or an internal mirror through it.
 *
 *   always refused   loopback, link-local (169.254.0.0/16 with the metadata address, fe80::/10),
 *                    unspecified, broadcast, multicast, 240.0.0.0/4, Teredo and every other special
 *                    range not listed below (default deny);
 *   private          RFC 1918, CGNAT 100.64.0.0/10 (a provider's internal network, not the
 *                    Internet), ULA fc00::/7 and site-local fec0::/10, the documentation and
 *                    benchmarking ranges: refused unless the operator's allow-list admits them;
 *   public           everything else (global unicast).
 *
 * Addresses that embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4
 * 2002::/16) are judged by the IPv4 address they lead to.
 *
 * The allow-list (QX_FETCH_ALLOW, comma-separated) holds CIDRs (`10.20.0.0/16`, `fd12::/48`, a bare
 * address is its /32 or /128) and host names (`mirror.corp.example`, or `*.corp.example` for every
 * name below it). A listed name admits the private addresses it resolves to; nothing admits an
 * always-refused one.
 */

export interface FetchAllowList {
  cidrs: [ipaddr.IPv4 | ipaddr.IPv6, number][];
  /** Lower case; a leading "*." matches every name below. */
  hostNames: string[];
}

export type AddressClass = "public" | "private" | "refused";

const PUBLIC_RANGES = new Set(["unicast", "as112", "as112v6", "amt"]);
const PRIVATE_RANGES = new Set(["private", "carrierGradeNat", "uniqueLocal", "deprecatedSiteLocal", "benchmarking"]);
const HOST_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function parseFetchAllowList(spec: string | undefined): FetchAllowList {
  const allow: FetchAllowList = { cidrs: [], hostNames: [] };
  for (const entry of (spec ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (ipaddr.isValidCIDR(entry)) allow.cidrs.push(ipaddr.parseCIDR(entry));
    else if (ipaddr.isValid(entry)) {
      const address = ipaddr.parse(entry);
      allow.cidrs.push([address, address.kind() === "ipv4" ? 32 : 128]);
    } else if (HOST_NAME.test(entry)) allow.hostNames.push(entry);
    else throw new Error(`QX_FETCH_ALLOW: ${JSON.stringify(entry)} is neither a CIDR, an address nor a host name`);
  }
  return allow;
}

/** The IPv4 address an IPv6 address leads to (mapped, NAT64, 6to4), or the address itself. */
function effectiveAddress(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  if (address.kind() === "ipv4") return address;
  const v6 = address as ipaddr.IPv6;
  const bytes = v6.toByteArray();
  switch (v6.range()) {
    case "ipv4Mapped":
    case "rfc6145":
      return v6.toIPv4Address();
    case "rfc6052": // 64:ff9b::/96 carries the address in its last 32 bits
      return new ipaddr.IPv4(bytes.slice(12, 16));
    case "6to4": // 2002:AABB:CCDD::/48
      return new ipaddr.IPv4(bytes.slice(2, 6));
    default:
      return v6;
  }
}

export function addressClass(ip: string): AddressClass {
  if (!ipaddr.isValid(ip)) return "refused";
  const address = effectiveAddress(ipaddr.parse(ip));
  const range = address.range();
  // 240.0.0.0/4 is "reserved" like the documentation ranges, but it is not unicast at all.
  if (address.kind() === "ipv4" && (address as ipaddr.IPv4).octets[0]! >= 240) return "refused";
  if (PUBLIC_RANGES.has(range)) return "public";
  // ipaddr.js's "reserved" is the documentation, benchmarking and protocol-assignment nets (240/4 is above).
  if (PRIVATE_RANGES.has(range) || range === "reserved") return "private";
  return "refused";
}

function hostNameListed(hostName: string, allow: FetchAllowList): boolean {
  const name = hostName.toLowerCase().replace(/\.$/, "");
  return allow.hostNames.some((listed) => (listed.startsWith("*.") ? name.endsWith(listed.slice(1)) : name === listed));
}

/** May a download connect to `ip`, reached through the URL host `hostName` (null for a literal)? */
export function addressAllowed(ip: string, hostName: string | null, allow: FetchAllowList): boolean {
  const klass = addressClass(ip);
  if (klass === "public") return true;
  if (klass === "refused") return false;
  const address = effectiveAddress(ipaddr.parse(ip));
  if (allow.cidrs.some(([net, bits]) => net.kind() === address.kind() && address.match(net, bits))) return true;
  return hostName !== null && hostNameListed(hostName, allow);
}

/** The address of a URL host that is an IP literal (brackets removed), else null. */
export function literalAddress(hostname: string): string | null {
  const bare = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
  return ipaddr.isValid(bare) && (bare.includes(":") || ipaddr.IPv4.isValidFourPartDecimal(bare)) ? bare : null;
}

/**
 * What can be refused before anything is resolved (the API's 400 URL_NOT_ALLOWED): a literal
 * address the policy refuses, or a name that is loopback by definition (`localhost`, RFC 6761).
 */
export function refusedBeforeResolving(url: URL, allow: FetchAllowList): boolean {
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  const literal = literalAddress(url.hostname);
  return literal !== null && !addressAllowed(literal, null, allow);
}
