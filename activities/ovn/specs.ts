/**
 * What the control plane asks OVN to hold, as the database activities read it from PostgreSQL and
 * the Northbound activities write it. Plain data: these travel through workflow histories.
 */
export type NetworkType = "overlay" | "vlan" | "external" | "isolated";

export interface NetworkSpec {
  id: string;
  name: string;
  type: NetworkType;
  cidr: string;
  gateway: string;
  dnsServers: string[];
  mtu: number;
  dhcpEnabled: boolean;
  /** The MAC OVN's DHCP server answers from. */
  dhcpServerMac: string;
  /** vlan and external networks: the provider network (a chassis's ovn-bridge-mappings name). */
  physicalNetwork: string | null;
  vlanTag: number | null;
}

export interface PortSpec {
  id: string;
  networkId: string;
  mac: string;
  ip: string;
  /** vm: a VM NIC (requested-chassis = its host); user: a port bound by whoever plugs it; router: a router's leg. */
  kind: "vm" | "user" | "router";
  /** The host whose chassis may claim the port (OVN's requested-chassis). */
  requestedChassis: string | null;
  securityGroupIds: string[];
  /** A DNS record on the network for this name (a VM's name). */
  dnsName: string | null;
  vmId: string | null;
  /** Router legs: the logical router port this switch port patches to. */
  routerPort: string | null;
}

export type RuleProtocol = "any" | "tcp" | "udp" | "icmp";

export interface SecurityGroupRuleSpec {
  id: string;
  direction: "ingress" | "egress";
  protocol: RuleProtocol;
  portMin: number | null;
  portMax: number | null;
  remoteCidr: string | null;
  remoteGroupId: string | null;
}

export interface SecurityGroupSpec {
  id: string;
  name: string;
  rules: SecurityGroupRuleSpec[];
}

export interface RouterLegSpec {
  portId: string;
  networkId: string;
  mac: string;
  ip: string;
  prefixLength: number;
}

export interface RouterSpec {
  id: string;
  name: string;
  /** The leg on an external network, bound to a gateway chassis: where SNAT and floating IPs happen. */
  gateway: (RouterLegSpec & { nexthop: string; chassis: string[] }) | null;
  interfaces: RouterLegSpec[];
  /** Source NAT of each interface's network to the gateway address (when the router has one and snat is on). */
  snat: boolean;
}

/**
 * A floating IP's place: the router whose gateway answers for it and the address it forwards to,
 * or null when it is free. Floating IPs' NAT rules are theirs alone (a router write keeps them).
 */
export interface FloatingIpPlacement {
  routerId: string;
  logicalIp: string;
}

export interface FloatingIpMove {
  floatingIpId: string;
  externalIp: string;
  from: FloatingIpPlacement | null;
  to: FloatingIpPlacement | null;
}
