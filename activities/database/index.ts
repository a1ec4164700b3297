import type { PrismaClient } from "@prisma/client";
import { createOperationActivities } from "./operations";
import { createPlacementActivities, type PlacementPolicy } from "./placement";
import { createVmRecordActivities } from "./vms";
import { createHostRecordActivities } from "./hosts";
import { createImageRecordActivities } from "./images";
import { createVmBootMediaActivities } from "./vm-boot-media";
import { createPoolRecordActivities } from "./pools";
import { createVolumeRecordActivities } from "./volumes";
import { createNetworkRecordActivities } from "./networks";
import { createSecurityGroupRecordActivities } from "./security-groups";
import { createRouterRecordActivities } from "./routers";
import { createGuestAgentRecordActivities } from "./guest-agents";
import { createOperationResultActivities } from "./operation-results";
import { createAgentUpgradeRecordActivities } from "./agent-upgrades";

/** Control-plane activities over PostgreSQL; the control-plane worker runs them as local activities. */
export function createDatabaseActivities(prisma: PrismaClient, policy: PlacementPolicy & { secretsKey?: string }) {
  return {
    ...createOperationActivities(prisma),
    ...createPlacementActivities(prisma, policy),
    ...createVmRecordActivities(prisma),
    ...createHostRecordActivities(prisma),
    ...createImageRecordActivities(prisma, policy),
    ...createVmBootMediaActivities(prisma),
    ...createPoolRecordActivities(prisma, policy),
    ...createVolumeRecordActivities(prisma),
    ...createNetworkRecordActivities(prisma),
    ...createSecurityGroupRecordActivities(prisma),
    ...createRouterRecordActivities(prisma, policy),
    ...createGuestAgentRecordActivities(prisma),
    ...createOperationResultActivities(prisma),
    ...createAgentUpgradeRecordActivities(prisma),
  };
}

export type DatabaseActivities = ReturnType<typeof createDatabaseActivities>;
