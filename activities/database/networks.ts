import type { NetState, Prisma, PrismaClient } from "@prisma/client";
import { permanentFailure } from "../../common/errors";
import type { NetworkSpec, PortSpec } from "../ovn/specs";

const portInclude = { securityGroups: { select: { securityGroupId: true } }, vm: { select: { name: true } } } satisfies Prisma.PortInclude;
type PortWithRefs = Prisma.PortGetPayload<{ include: typeof portInclude }>;

export function portSpecOf(port: PortWithRefs): PortSpec {
  return {
    id: port.id,
    networkId: port.networkId,
    mac: port.mac,
    ip: port.ip,
    kind: port.owner === "VM" ? "vm" : "user",
    requestedChassis: port.hostId,
    securityGroupIds: port.securityGroups.map((g) => g.securityGroupId).sort(),
    // VM names become DNS records on their networks (OVN answers them).
    dnsName: port.vm?.name ?? null,
    vmId: port.vmId,
    routerPort: null,
  };
}

/** The network and port rows behind OVN's switches and switch ports. */
export function createNetworkRecordActivities(prisma: PrismaClient) {
  return {
    async loadNetwork(networkId: string): Promise<NetworkSpec & { state: NetState }> {
      const n = await prisma.network.findUnique({ where: { id: networkId } });
      if (!n) throw permanentFailure("NOT_FOUND", `network ${networkId} does not exist`);
      return {
        id: n.id,
        name: n.name,
        type: n.type,
        cidr: n.cidr,
        gateway: n.gateway,
        dnsServers: n.dnsServers,
        mtu: n.mtu,
        dhcpEnabled: n.dhcpEnabled,
        dhcpServerMac: n.dhcpServerMac,
        physicalNetwork: n.physicalNetwork,
        vlanTag: n.vlanTag,
        state: n.state,
      };
    },

    /** createNetwork's record: its switch exists. */
    async networkCreated(networkId: string): Promise<void> {
      await prisma.network.updateMany({ where: { id: networkId, state: "CREATING" }, data: { state: "ACTIVE" } });
    },

    async networkStateChanged(input: { networkId: string; state: NetState; errorCode?: string; errorMessage?: string }): Promise<void> {
      await prisma.network.updateMany({
        where: { id: input.networkId },
        data: { state: input.state, errorCode: input.errorCode ?? null, errorMessage: input.errorMessage ?? null },
      });
    },

    /** The delete's last step. A port made meanwhile keeps the row (the foreign key refuses). */
    async networkDeleted(networkId: string): Promise<void> {
      await prisma.network.deleteMany({ where: { id: networkId } });
    },

    /**
     * Ports by id, in the order asked. One SQL statement whatever the count (a batch is hundreds of
     * ports; Prisma's include costs a query per relation and about a millisecond a row).
     */
    async loadPorts(portIds: string[]): Promise<PortSpec[]> {
      const rows = await prisma.$queryRaw<{ id: string; networkId: string; mac: string; ip: string; owner: string; hostId: string | null; vmId: string | null; vmName: string | null; groups: string[] }[]>`
        SELECT p.id, p."networkId", p.mac, p.ip, p.owner::text AS owner, p."hostId", p."vmId", v.name AS "vmName",
               COALESCE(array_agg(g."securityGroupId" ORDER BY g."securityGroupId") FILTER (WHERE g."securityGroupId" IS NOT NULL), '{}') AS groups
        FROM "Port" p LEFT JOIN "Vm" v ON v.id = p."vmId" LEFT JOIN "PortSecurityGroup" g ON g."portId" = p.id
        WHERE p.id = ANY(${portIds}::text[])
        GROUP BY p.id, v.name`;
      const byId = new Map(rows.map((p) => [p.id, p]));
      return portIds.map((id) => {
        const port = byId.get(id);
        if (!port) throw permanentFailure("NOT_FOUND", `port ${id} does not exist`);
        return {
          id: port.id,
          networkId: port.networkId,
          mac: port.mac,
          ip: port.ip,
          kind: port.owner === "VM" ? "vm" : "user",
          requestedChassis: port.hostId,
          securityGroupIds: port.groups,
          dnsName: port.vmName,
          vmId: port.vmId,
          routerPort: null,
        };
      });
    },

    /** A VM's NICs, in interface order. */
    async loadVmPorts(vmId: string): Promise<PortSpec[]> {
      const rows = await prisma.port.findMany({ where: { vmId, owner: "VM" }, include: portInclude, orderBy: { nicIndex: "asc" } });
      return rows.map(portSpecOf);
    },

    /** Ports made in OVN: ACTIVE, bound (requested-chassis) to `hostId` when given. */
    async portsActivated(input: { portIds: string[]; hostId?: string }): Promise<void> {
      // One statement with one array parameter, however many ports (a batch has hundreds).
      await prisma.$executeRaw`
        UPDATE "Port" SET state = 'ACTIVE', "hostId" = COALESCE(${input.hostId ?? null}::text, "hostId"), "updatedAt" = now()
        WHERE id = ANY(${input.portIds}::text[])`;
    },

    async portsStateChanged(input: { portIds: string[]; state: NetState }): Promise<void> {
      await prisma.port.updateMany({ where: { id: { in: input.portIds } }, data: { state: input.state } });
    },

    /** The port's security groups are now `securityGroupIds` (updatePort's record). */
    async portSecurityGroupsSet(input: { portId: string; securityGroupIds: string[] }): Promise<void> {
      await prisma.$transaction([
        prisma.portSecurityGroup.deleteMany({ where: { portId: input.portId } }),
        prisma.portSecurityGroup.createMany({ data: input.securityGroupIds.map((securityGroupId) => ({ portId: input.portId, securityGroupId })) }),
      ]);
    },

    /** Their addresses go back to the pool. Idempotent. */
    async portsRemoved(portIds: string[]): Promise<void> {
      await prisma.port.deleteMany({ where: { id: { in: portIds } } });
    },
  };
}
