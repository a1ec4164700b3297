import { Prisma } from "@prisma/client";

/**
 * Placement's condition for a VM with NICs (issue 10), as a SQL fragment over the candidate host
 * `h`: its OVN chassis reported healthy and fresh, and it bridges to the provider network of every
 * vlan or external network the VM has a NIC on. A VM without NICs may go anywhere.
 */
export function hostChassisServes(vmId: string, freshSince: Date): Prisma.Sql {
  return Prisma.sql`(
    NOT EXISTS (SELECT 1 FROM "Port" np WHERE np."vmId" = ${vmId})
    OR (h."chassisHealthy" AND h."chassisReportedAt" >= ${freshSince}
        AND NOT EXISTS (
          SELECT 1 FROM "Port" np JOIN "Network" nn ON nn.id = np."networkId"
          WHERE np."vmId" = ${vmId} AND nn."physicalNetwork" IS NOT NULL AND NOT (nn."physicalNetwork" = ANY (h."physicalNetworks"))
        ))
  )`;
}
