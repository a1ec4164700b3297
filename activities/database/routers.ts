import type { NetState, PrismaClient } from "@prisma/client";
import { permanentFailure } from "../../common/errors";
import type { FloatingIpMove, FloatingIpPlacement, RouterLegSpec, RouterSpec } from "../ovn/specs";
import { freshSince, type PoolFreshness } from "./pools";

/** Gateway chassis a router's external leg is bound to, by priority: at most this many. */
const GATEWAY_CHASSIS = 3;

/**
 * Routers and floating IPs. A change to a router's legs is recorded by the API as port rows in
 * transition (a new leg CREATING, a removed one DELETING): the workflow writes OVN as `after`,
 * can put it back as `before`, then commits or rolls back the rows.
 */
export function createRouterRecordActivities(prisma: PrismaClient, policy: PoolFreshness) {
  async function gatewayChassis(physicalNetwork: string): Promise<string[]> {
    const hosts = await prisma.host.findMany({
      where: { state: "ONLINE", chassisHealthy: true, chassisReportedAt: { gte: freshSince(policy) }, physicalNetworks: { has: physicalNetwork } },
      orderBy: { id: "asc" },
      take: GATEWAY_CHASSIS,
      select: { id: true },
    });
    if (hosts.length === 0) throw permanentFailure("NO_HOST_AVAILABLE", `no host with a healthy OVN chassis bridges to provider network ${physicalNetwork}`);
    return hosts.map((h) => h.id);
  }

  async function routerSpecs(routerId: string) {
    const router = await prisma.router.findUnique({ where: { id: routerId }, include: { ports: { include: { network: true }, orderBy: { createdAt: "asc" } } } });
    if (!router) throw permanentFailure("NOT_FOUND", `router ${routerId} does not exist`);
    const leg = (p: (typeof router.ports)[number]): RouterLegSpec => ({ portId: p.id, networkId: p.networkId, mac: p.mac, ip: p.ip, prefixLength: Number(p.network.cidr.split("/")[1]) });
    const gatewayPort = router.ports.find((p) => p.owner === "ROUTER_GATEWAY");
    const gateway = gatewayPort ? { ...leg(gatewayPort), nexthop: gatewayPort.network.gateway, chassis: await gatewayChassis(gatewayPort.network.physicalNetwork!) } : null;
    const spec = (states: NetState[]): RouterSpec => ({
      id: router.id,
      name: router.name,
      gateway,
      interfaces: router.ports.filter((p) => p.owner === "ROUTER_INTERFACE" && states.includes(p.state)).map(leg),
      snat: router.snat,
    });
    return { state: router.state, before: spec(["ACTIVE", "DELETING"]), after: spec(["ACTIVE", "CREATING"]) };
  }

  async function placementOf(fip: { networkId: string }, portId: string): Promise<FloatingIpPlacement> {
    const port = await prisma.port.findUnique({ where: { id: portId } });
    if (!port) throw permanentFailure("NOT_FOUND", `port ${portId} does not exist`);
    const leg = await prisma.port.findFirst({ where: { owner: "ROUTER_INTERFACE", state: "ACTIVE", networkId: port.networkId, router: { externalNetworkId: fip.networkId } } });
    if (!leg?.routerId) throw permanentFailure("CONFLICT", `no router joins port ${portId}'s network to the floating IP's network ${fip.networkId}`);
    return { routerId: leg.routerId, logicalIp: port.ip };
  }

  return {
    loadRouterChange: routerSpecs,

    /** The router change is in OVN: new legs ACTIVE, removed ones gone, the router ACTIVE. */
    async routerCommitted(routerId: string): Promise<void> {
      await prisma.$transaction([
        prisma.port.deleteMany({ where: { routerId, state: "DELETING" } }),
        prisma.port.updateMany({ where: { routerId, state: "CREATING" }, data: { state: "ACTIVE" } }),
        prisma.router.updateMany({ where: { id: routerId }, data: { state: "ACTIVE", errorCode: null, errorMessage: null } }),
      ]);
    },

    /** The change was undone in OVN: legs as before; a router that was being made is FAILED, holding no address. */
    async routerRolledBack(input: { routerId: string; errorCode: string; errorMessage: string }): Promise<void> {
      const { routerId } = input;
      await prisma.$transaction(async (tx) => {
        const router = await tx.router.findUnique({ where: { id: routerId } });
        if (!router) return;
        if (router.state === "CREATING") {
          await tx.port.deleteMany({ where: { routerId } });
          await tx.router.update({ where: { id: routerId }, data: { state: "FAILED", errorCode: input.errorCode, errorMessage: input.errorMessage } });
          return;
        }
        await tx.port.deleteMany({ where: { routerId, state: "CREATING" } });
        await tx.port.updateMany({ where: { routerId, state: "DELETING" }, data: { state: "ACTIVE" } });
      });
    },

    async routerStateChanged(input: { routerId: string; state: NetState; errorCode?: string; errorMessage?: string }): Promise<void> {
      await prisma.router.updateMany({ where: { id: input.routerId }, data: { state: input.state, errorCode: input.errorCode ?? null, errorMessage: input.errorMessage ?? null } });
    },

    /** deleteRouter's record: its gateway leg's address goes with it. */
    async routerDeleted(routerId: string): Promise<void> {
      await prisma.$transaction([prisma.port.deleteMany({ where: { routerId } }), prisma.router.deleteMany({ where: { id: routerId } })]);
    },

    /** Where a floating IP is, and where `toPortId` (null: nowhere) puts it. */
    async loadFloatingIpMove(input: { floatingIpId: string; toPortId: string | null }): Promise<FloatingIpMove> {
      const fip = await prisma.floatingIp.findUnique({ where: { id: input.floatingIpId }, include: { addressPort: true, targetPort: true } });
      if (!fip) throw permanentFailure("NOT_FOUND", `floating IP ${input.floatingIpId} does not exist`);
      return {
        floatingIpId: fip.id,
        externalIp: fip.addressPort.ip,
        from: fip.routerId && fip.targetPort ? { routerId: fip.routerId, logicalIp: fip.targetPort.ip } : null,
        to: input.toPortId ? await placementOf(fip, input.toPortId) : null,
      };
    },

    async floatingIpMoved(input: { floatingIpId: string; toPortId: string | null; routerId: string | null }): Promise<void> {
      const fip = await prisma.floatingIp.findUniqueOrThrow({ where: { id: input.floatingIpId } });
      await prisma.$transaction([
        prisma.floatingIp.update({ where: { id: fip.id }, data: { targetPortId: input.toPortId, routerId: input.routerId, state: "ACTIVE" } }),
        prisma.port.update({ where: { id: fip.addressPortId }, data: { state: "ACTIVE" } }),
      ]);
    },

    async floatingIpStateChanged(input: { floatingIpId: string; state: NetState }): Promise<void> {
      await prisma.floatingIp.updateMany({ where: { id: input.floatingIpId }, data: { state: input.state } });
    },

    /** Its address goes back to the external network (the floating IP row goes with its address port). */
    async floatingIpRemoved(floatingIpId: string): Promise<void> {
      const fip = await prisma.floatingIp.findUnique({ where: { id: floatingIpId } });
      if (fip) await prisma.port.deleteMany({ where: { id: fip.addressPortId } });
    },
  };
}
