/**
 * The control-plane worker: runs every workflow, and the database/placement activities as local
 * activities, on the control-plane queue. Host work goes to host queues (workers/host.ts).
 *
 *   DATABASE_URL=... QX_TEMPORAL_ADDRESS=127.0.0.1:7233 tsx workers/control-plane.ts
 */
import { Client, Connection } from "@temporalio/client";
import { NativeConnection, Runtime, Worker, type ActivityInterceptorsFactory, type WorkflowBundleOption } from "@temporalio/worker";
import type { PrismaClient } from "@prisma/client";
import { createDatabaseActivities, type DatabaseActivities } from "../activities/database";
import { controlPlaneConfigFromEnv, DEFAULT_OUTBOX_GRACE_MS, DEFAULT_OUTBOX_SWEEP_INTERVAL_MS, DEFAULT_OVN_NB_REMOTE, type ControlPlaneConfig } from "../common/config";
import { createPrismaClient } from "../common/database";
import { startOutboxSweeper } from "../common/operation-outbox";
import { workerLogger } from "../common/worker-logger";
import { STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT } from "../common/workflow-tasks";
import { createNetworkActivities, type NetworkActivities } from "../activities/ovn/nb-activities";
import { createNorthbound } from "../activities/ovn/northbound";
import { createOvsdbClient } from "../activities/ovn/ovsdb-client";
import { stepLogAttributes } from "../activities/step-log-attributes";

/** Workflow interceptors of every workflow: the saga step each activity runs for goes in its header. */
export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve("../workflows/step-header-interceptor")];

export interface ControlPlaneWorkerOptions {
  connection: NativeConnection;
  config: ControlPlaneConfig;
  prisma: PrismaClient;
  /** A pre-built bundle (tests share one); otherwise workflows/ is bundled at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Replaces the database activities (tests wrap them to inject failures). */
  activities?: DatabaseActivities;
  /** The OVN Northbound activities; by default over one connection to config.ovnNbRemote. */
  networkActivities?: NetworkActivities;
  /** More activity interceptors, after the step logger (tests inject failures by step). */
  activityInterceptors?: ActivityInterceptorsFactory[];
}

// A sweeper that claimed an operation and died before starting it: another takes it after this long.
const OUTBOX_RECLAIM_AFTER_MS = 15_000;

export function createControlPlaneWorker(options: ControlPlaneWorkerOptions): Promise<Worker> {
  const { config } = options;
  return Worker.create({
    connection: options.connection,
    namespace: config.temporalNamespace,
    taskQueue: config.controlPlaneQueue,
    // A pre-built bundle must have been built with WORKFLOW_INTERCEPTOR_MODULES.
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve("../workflows") }),
    stickyQueueScheduleToStartTimeout: STICKY_QUEUE_SCHEDULE_TO_START_TIMEOUT,
    activities: {
      ...(options.activities ?? createDatabaseActivities(options.prisma, config)),
      ...(options.networkActivities ?? createNetworkActivities(createNorthbound(createOvsdbClient(config.ovnNbRemote ?? DEFAULT_OVN_NB_REMOTE)))),
    },
    interceptors: { workflowModules: options.workflowBundle ? [] : WORKFLOW_INTERCEPTOR_MODULES, activity: [stepLogAttributes, ...(options.activityInterceptors ?? [])] },
  });
}

async function main(): Promise<void> {
  Runtime.install({ logger: workerLogger("control-plane") });
  const config = controlPlaneConfigFromEnv();
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error("DATABASE_URL is required");
  const prisma = createPrismaClient(databaseUrl);
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  // A pre-built bundle (QX_WORKFLOW_BUNDLE, a file from bundleWorkflowCode) skips the seconds of
  // bundling at start: a restarted worker is back on its queue in about a second.
  const bundlePath = process.env.QX_WORKFLOW_BUNDLE;
  const worker = await createControlPlaneWorker({ connection, config, prisma, ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : {}) });
  const clientConnection = Connection.lazy({ address: config.temporalAddress });
  const client = new Client({ connection: clientConnection, namespace: config.temporalNamespace });
  const outbox = startOutboxSweeper(prisma, client, {
    controlPlaneQueue: config.controlPlaneQueue,
    intervalMs: config.outboxSweepIntervalMs ?? DEFAULT_OUTBOX_SWEEP_INTERVAL_MS,
    graceMs: config.outboxGraceMs ?? DEFAULT_OUTBOX_GRACE_MS,
    reclaimAfterMs: OUTBOX_RECLAIM_AFTER_MS,
  });
  console.log(`control-plane worker polling ${config.controlPlaneQueue} on ${config.temporalAddress}`);
  await worker.run();
  await outbox.stop();
  await clientConnection.close();
  await prisma.$disconnect();
  await connection.close();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
