import type { PrismaClient } from "@prisma/client";
import { createOperationActivities } from "./operations";
import { createPlacementActivities, type PlacementPolicy } from "./placement";
import { createVmRecordActivities } from "./vms";
import { createHostRecordActivities } from "./hosts";

/** Control-plane activities over PostgreSQL; the control-plane worker runs them as local activities. */
export function createDatabaseActivities(prisma: PrismaClient, policy: PlacementPolicy) {
  return {
    ...createOperationActivities(prisma),
    ...createPlacementActivities(prisma, policy),
    ...createVmRecordActivities(prisma),
    ...createHostRecordActivities(prisma),
  };
}

export type DatabaseActivities = ReturnType<typeof createDatabaseActivities>;
