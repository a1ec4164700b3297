import { z } from "zod";
import { isIpv4 } from "../common/ipv4";

/** Request schemas of the virtual network routes (networks, ports, security groups, routers, floating IPs). */
const name = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-', starting with a letter or digit");

export const ipv4 = z.string().refine(isIpv4, "an IPv4 address");
const cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, "an IPv4 CIDR (10.0.0.0/24)");
const physicalNetwork = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "a provider network name (letters, digits, '_', '.', '-')");
const securityGroupIds = z.array(z.string().uuid()).max(16);

export const createNetworkBody = z
  .object({
    name,
    type: z.enum(["overlay", "vlan", "external", "isolated"]).default("overlay"),
    cidr,
    /** Default: the first address. */
    gateway: ipv4.optional(),
    dnsServers: z.array(ipv4).max(4).default([]),
    /** Default: 1442 on overlay and isolated networks (Geneve's 58 bytes inside a 1500 underlay), else 1500. */
    mtu: z.number().int().min(576).max(9000).optional(),
    dhcp: z.boolean().default(true),
    reservedRanges: z.array(z.object({ start: ipv4, end: ipv4 }).strict()).max(32).default([]),
    physicalNetwork: physicalNetwork.optional(),
    vlanTag: z.number().int().min(1).max(4094).optional(),
  })
  .strict();
export type CreateNetworkBody = z.infer<typeof createNetworkBody>;

export const createPortBody = z
  .object({
    networkId: z.string().uuid(),
    name: name.optional(),
    ip: ipv4.optional(),
    /** Omitted or empty: the port is not filtered (port security still pins its MAC and IP). */
    securityGroupIds: securityGroupIds.default([]),
    /** The host whose chassis may bind the port (requested-chassis); any when omitted. */
    hostId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "a host id").optional(),
  })
  .strict();
export type CreatePortBody = z.infer<typeof createPortBody>;

/** Up to 500 ports in one request (what fits the 64 KiB body limit): one operation, one Northbound transaction. */
export const createPortsBody = z.object({ ports: z.array(createPortBody).min(1).max(500) }).strict();

export const updatePortBody = z.object({ securityGroupIds }).strict();

/** A VM's NIC: a port on the network, made with the VM (createVm) or hot-plugged (attachNic). */
export const nicBody = z.object({ networkId: z.string().uuid(), ip: ipv4.optional(), securityGroupIds: securityGroupIds.default([]) }).strict();
export type NicBody = z.infer<typeof nicBody>;
export const MAX_VM_NICS = 8;
export const vmNics = z.array(nicBody).max(MAX_VM_NICS);

export const createSecurityGroupBody = z.object({ name, description: z.string().max(255).default("") }).strict();

const port = z.number().int().min(0).max(65535);
export const securityGroupRuleBody = z
  .object({
    direction: z.enum(["ingress", "egress"]),
    protocol: z.enum(["any", "tcp", "udp", "icmp"]).default("any"),
    portMin: port.optional(),
    portMax: port.optional(),
    remoteCidr: cidr.optional(),
    remoteGroupId: z.string().uuid().optional(),
  })
  .strict()
  .refine((r) => !(r.remoteCidr && r.remoteGroupId), "remoteCidr or remoteGroupId, not both")
  .refine((r) => r.portMin === undefined || r.protocol === "tcp" || r.protocol === "udp", "ports need protocol tcp or udp")
  .refine((r) => r.portMax === undefined || (r.portMin !== undefined && r.portMax >= r.portMin), "portMax needs portMin and must be at least portMin");
export type SecurityGroupRuleBody = z.infer<typeof securityGroupRuleBody>;

export const createRouterBody = z.object({ name, externalNetworkId: z.string().uuid().optional(), snat: z.boolean().default(true) }).strict();
export const routerInterfaceBody = z.object({ networkId: z.string().uuid() }).strict();

export const createFloatingIpBody = z.object({ networkId: z.string().uuid(), portId: z.string().uuid().optional() }).strict();
/** portId null frees the floating IP; another port moves it there in one transaction. */
export const updateFloatingIpBody = z.object({ portId: z.string().uuid().nullable() }).strict();
