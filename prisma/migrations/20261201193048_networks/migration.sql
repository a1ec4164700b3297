-- Virtual networks on OVN (issue 10): networks, ports (IPAM: MAC unique, IP unique per network), security groups,
-- routers, floating IPs, and the chassis health a host reports.
-- CreateEnum
CREATE TYPE "NetworkType" AS ENUM ('overlay', 'vlan', 'external', 'isolated');

-- CreateEnum
CREATE TYPE "NetState" AS ENUM ('CREATING', 'ACTIVE', 'DELETING', 'FAILED');

-- CreateEnum
CREATE TYPE "PortOwner" AS ENUM ('USER', 'VM', 'ROUTER_INTERFACE', 'ROUTER_GATEWAY', 'FLOATING_IP');

-- CreateEnum
CREATE TYPE "RuleDirection" AS ENUM ('ingress', 'egress');

-- AlterTable
ALTER TABLE "Host" ADD COLUMN     "chassisHealthy" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "chassisMessage" TEXT,
ADD COLUMN     "chassisReportedAt" TIMESTAMP(3),
ADD COLUMN     "physicalNetworks" TEXT[] DEFAULT ARRAY[]::TEXT[];

-- CreateTable
CREATE TABLE "Network" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "type" "NetworkType" NOT NULL,
    "cidr" TEXT NOT NULL,
    "gateway" TEXT NOT NULL,
    "dnsServers" TEXT[],
    "mtu" INTEGER NOT NULL,
    "dhcpEnabled" BOOLEAN NOT NULL,
    "dhcpServerMac" TEXT NOT NULL,
    "reservedRanges" JSONB NOT NULL,
    "physicalNetwork" TEXT,
    "vlanTag" INTEGER,
    "state" "NetState" NOT NULL DEFAULT 'CREATING',
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Network_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Port" (
    "id" TEXT NOT NULL,
    "networkId" TEXT NOT NULL,
    "name" TEXT,
    "owner" "PortOwner" NOT NULL,
    "mac" TEXT NOT NULL,
    "ip" TEXT NOT NULL,
    "vmId" TEXT,
    "nicIndex" INTEGER,
    "routerId" TEXT,
    "hostId" TEXT,
    "state" "NetState" NOT NULL DEFAULT 'CREATING',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Port_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SecurityGroup" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "state" "NetState" NOT NULL DEFAULT 'CREATING',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "SecurityGroup_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SecurityGroupRule" (
    "id" TEXT NOT NULL,
    "securityGroupId" TEXT NOT NULL,
    "direction" "RuleDirection" NOT NULL,
    "protocol" TEXT NOT NULL,
    "portMin" INTEGER,
    "portMax" INTEGER,
    "remoteCidr" TEXT,
    "remoteGroupId" TEXT,
    "state" "NetState" NOT NULL DEFAULT 'CREATING',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SecurityGroupRule_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PortSecurityGroup" (
    "portId" TEXT NOT NULL,
    "securityGroupId" TEXT NOT NULL,

    CONSTRAINT "PortSecurityGroup_pkey" PRIMARY KEY ("portId","securityGroupId")
);

-- CreateTable
CREATE TABLE "Router" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "externalNetworkId" TEXT,
    "snat" BOOLEAN NOT NULL DEFAULT true,
    "state" "NetState" NOT NULL DEFAULT 'CREATING',
    "errorCode" TEXT,
    "errorMessage" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Router_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "FloatingIp" (
    "id" TEXT NOT NULL,
    "networkId" TEXT NOT NULL,
    "addressPortId" TEXT NOT NULL,
    "targetPortId" TEXT,
    "routerId" TEXT,
    "state" "NetState" NOT NULL DEFAULT 'CREATING',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "FloatingIp_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Port_mac_key" ON "Port"("mac");

-- CreateIndex
CREATE INDEX "Port_routerId_idx" ON "Port"("routerId");

-- CreateIndex
CREATE UNIQUE INDEX "Port_networkId_ip_key" ON "Port"("networkId", "ip");

-- CreateIndex
CREATE UNIQUE INDEX "Port_vmId_nicIndex_key" ON "Port"("vmId", "nicIndex");

-- CreateIndex
CREATE INDEX "SecurityGroupRule_securityGroupId_idx" ON "SecurityGroupRule"("securityGroupId");

-- CreateIndex
CREATE UNIQUE INDEX "FloatingIp_addressPortId_key" ON "FloatingIp"("addressPortId");

-- CreateIndex
CREATE UNIQUE INDEX "FloatingIp_targetPortId_key" ON "FloatingIp"("targetPortId");

-- AddForeignKey
ALTER TABLE "Port" ADD CONSTRAINT "Port_networkId_fkey" FOREIGN KEY ("networkId") REFERENCES "Network"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Port" ADD CONSTRAINT "Port_vmId_fkey" FOREIGN KEY ("vmId") REFERENCES "Vm"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Port" ADD CONSTRAINT "Port_routerId_fkey" FOREIGN KEY ("routerId") REFERENCES "Router"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SecurityGroupRule" ADD CONSTRAINT "SecurityGroupRule_securityGroupId_fkey" FOREIGN KEY ("securityGroupId") REFERENCES "SecurityGroup"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "SecurityGroupRule" ADD CONSTRAINT "SecurityGroupRule_remoteGroupId_fkey" FOREIGN KEY ("remoteGroupId") REFERENCES "SecurityGroup"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PortSecurityGroup" ADD CONSTRAINT "PortSecurityGroup_portId_fkey" FOREIGN KEY ("portId") REFERENCES "Port"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PortSecurityGroup" ADD CONSTRAINT "PortSecurityGroup_securityGroupId_fkey" FOREIGN KEY ("securityGroupId") REFERENCES "SecurityGroup"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FloatingIp" ADD CONSTRAINT "FloatingIp_networkId_fkey" FOREIGN KEY ("networkId") REFERENCES "Network"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FloatingIp" ADD CONSTRAINT "FloatingIp_addressPortId_fkey" FOREIGN KEY ("addressPortId") REFERENCES "Port"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FloatingIp" ADD CONSTRAINT "FloatingIp_targetPortId_fkey" FOREIGN KEY ("targetPortId") REFERENCES "Port"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "FloatingIp" ADD CONSTRAINT "FloatingIp_routerId_fkey" FOREIGN KEY ("routerId") REFERENCES "Router"("id") ON DELETE SET NULL ON UPDATE CASCADE;

