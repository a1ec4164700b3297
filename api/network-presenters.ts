import type { FloatingIp, Network, Port, PortSecurityGroup, Router, SecurityGroup, SecurityGroupRule } from "@prisma/client";

/** JSON shapes of the virtual network routes. */

export function presentNetwork(network: Network & { _count?: { ports: number } }) {
  return {
    id: network.id,
    name: network.name,
    type: network.type,
    cidr: network.cidr,
    gateway: network.gateway,
    dnsServers: network.dnsServers,
    mtu: network.mtu,
    dhcp: network.dhcpEnabled,
    reservedRanges: network.reservedRanges,
    physicalNetwork: network.physicalNetwork,
    vlanTag: network.vlanTag,
    state: network.state,
    error: network.errorCode ? { code: network.errorCode, message: network.errorMessage } : null,
    ports: network._count?.ports,
    createdAt: network.createdAt,
    updatedAt: network.updatedAt,
    links: { self: `/v1/networks/${network.id}`, ports: `/v1/ports?networkId=${network.id}`, operations: `/v1/operations?targetId=${network.id}` },
  };
}

export function presentPort(port: Port & { securityGroups?: PortSecurityGroup[] }) {
  return {
    id: port.id,
    name: port.name,
    networkId: port.networkId,
    owner: port.owner,
    mac: port.mac,
    ip: port.ip,
    vmId: port.vmId,
    nicIndex: port.nicIndex,
    routerId: port.routerId,
    hostId: port.hostId,
    securityGroupIds: port.securityGroups?.map((g) => g.securityGroupId).sort(),
    state: port.state,
    createdAt: port.createdAt,
    updatedAt: port.updatedAt,
    links: { self: `/v1/ports/${port.id}`, network: `/v1/networks/${port.networkId}`, operations: `/v1/operations?targetId=${port.id}` },
  };
}

export function presentSecurityGroup(group: SecurityGroup & { rules?: SecurityGroupRule[]; _count?: { ports: number } }) {
  return {
    id: group.id,
    name: group.name,
    description: group.description,
    state: group.state,
    rules: group.rules?.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map(presentRule),
    ports: group._count?.ports,
    createdAt: group.createdAt,
    updatedAt: group.updatedAt,
    links: { self: `/v1/security-groups/${group.id}`, rules: `/v1/security-groups/${group.id}/rules`, operations: `/v1/operations?targetId=${group.id}` },
  };
}

export function presentRule(rule: SecurityGroupRule) {
  return {
    id: rule.id,
    direction: rule.direction,
    protocol: rule.protocol,
    portMin: rule.portMin,
    portMax: rule.portMax,
    remoteCidr: rule.remoteCidr,
    remoteGroupId: rule.remoteGroupId,
    state: rule.state,
    createdAt: rule.createdAt,
  };
}

export function presentRouter(router: Router & { ports?: Port[] }) {
  const legs = router.ports ?? [];
  const gateway = legs.find((p) => p.owner === "ROUTER_GATEWAY");
  return {
    id: router.id,
    name: router.name,
    externalNetworkId: router.externalNetworkId,
    gatewayIp: gateway?.ip ?? null,
    snat: router.snat,
    interfaces: legs.filter((p) => p.owner === "ROUTER_INTERFACE").map((p) => ({ networkId: p.networkId, portId: p.id, ip: p.ip, state: p.state })),
    state: router.state,
    error: router.errorCode ? { code: router.errorCode, message: router.errorMessage } : null,
    createdAt: router.createdAt,
    updatedAt: router.updatedAt,
    links: { self: `/v1/routers/${router.id}`, operations: `/v1/operations?targetId=${router.id}` },
  };
}

export function presentFloatingIp(fip: FloatingIp & { addressPort: Port }) {
  return {
    id: fip.id,
    networkId: fip.networkId,
    ip: fip.addressPort.ip,
    portId: fip.targetPortId,
    routerId: fip.routerId,
    state: fip.state,
    createdAt: fip.createdAt,
    updatedAt: fip.updatedAt,
    links: { self: `/v1/floating-ips/${fip.id}`, operations: `/v1/operations?targetId=${fip.id}` },
  };
}
