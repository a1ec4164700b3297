import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import type { PrismaClient } from "@prisma/client";
import { Client, Connection } from "@temporalio/client";
import { bundleWorkflowCode } from "@temporalio/worker";
import { localPoolId } from "../../common/config";
import { createPrismaClient } from "../../common/database";
import { monitorHostWorkflowId } from "../../common/operations";
import { hostTaskQueue } from "../../common/task-queues";
import { WORKFLOW_INTERCEPTOR_MODULES } from "../../workers/control-plane";
import { taskQueuePollers } from "../../common/task-queue-pollers";
import { apiClient, domainState, removeDomains, TEST_TOKEN, TEST_USER, type ApiClient } from "./api-client";
import { RealProcess } from "./processes";
import { createTestDatabase } from "./test-database";
import { TEST_TEMPORAL_ADDRESS, testPaths } from "./test-env";
import { testNetwork } from "./test-network";

/**
 * A whole Quantix system of real processes, as run-system runs it: the control-plane worker
 * (workers/control-plane.ts), one host worker per host (workers/host.ts) and the API
 * (api/server.ts), each a child process a test can SIGKILL, freeze and restart. It shares the
 * Temporal server, PostgreSQL and libvirtd of global-setup, with its own database, queue, host ids
 * and directories, like startTestSystem (which runs the same pieces in-process).
 */
export interface ProcessHost {
  id: string;
  poolId: string;
  poolDir: string;
  consoleLogDir: string;
  worker: RealProcess;
}

export interface ProcessSystem extends ApiClient {
  controlPlane: RealProcess;
  hosts: ProcessHost[];
  api: RealProcess;
  prisma: PrismaClient;
  temporal: Client;
  controlPlaneQueue: string;
  /** Where each process's log is (appended across restarts). */
  workDir: string;
  domainState(vmId: string): Promise<string | null>;
  /** Every process this system started, for checks that none is left. */
  processes(): RealProcess[];
  shutdown(): Promise<void>;
}

export interface ProcessSystemOptions {
  hostCount?: number;
  hostScheduleToStartMs?: number;
  /** Extra environment for every child (e.g. the outbox sweep interval). */
  env?: NodeJS.ProcessEnv;
  /** The Temporal address the API uses (a test may put a proxy in between); default the test server. */
  apiTemporalAddress?: string;
}

let bundleFile: Promise<string> | undefined;

/** The workflows bundled once per test file, as a file the control-plane worker loads (QX_WORKFLOW_BUNDLE). */
function workflowBundleFile(): Promise<string> {
  bundleFile ??= (async () => {
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve("../../workflows"), workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, logger: silent });
    const file = path.join(testPaths.dataDir, `workflow-bundle-${process.pid}.js`);
    await mkdir(testPaths.dataDir, { recursive: true });
    await writeFile(file, code);
    return file;
  })();
  return bundleFile;
}

const silent = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never;

/** A TCP port nobody listens on now (the kernel's pick), kept for the life of the system. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** True once a worker of this process (Temporal names it `<pid>@<hostname>`) polls the queue. */
async function polledBy(temporal: Client, queue: string, kind: "workflow" | "activity", pid: number | undefined): Promise<boolean> {
  return (await taskQueuePollers(temporal, queue, kind)).some((p) => p.identity.startsWith(`${pid}@`));
}

export async function startProcessSystem(options: ProcessSystemOptions = {}): Promise<ProcessSystem> {
  const suffix = randomBytes(4).toString("hex");
  const database = await createTestDatabase(suffix);
  const workDir = path.join(testPaths.dataDir, `process-system-${suffix}`);
  await mkdir(workDir, { recursive: true });
  const prisma = createPrismaClient(database.url);
  const connection = await Connection.connect({ address: TEST_TEMPORAL_ADDRESS });
  const temporal = new Client({ connection });
  const controlPlaneQueue = `control-plane-${suffix}`;
  const secretsKey = randomBytes(32).toString("base64");
  const common: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    QX_TEMPORAL_ADDRESS: TEST_TEMPORAL_ADDRESS,
    QX_CONTROL_PLANE_QUEUE: controlPlaneQueue,
    QX_SECRETS_KEY: secretsKey,
    QX_HOST_SCHEDULE_TO_START_MS: String(options.hostScheduleToStartMs ?? 30_000),
    QX_POOL_STALE_AFTER_MS: "60000",
    QX_FETCH_ALLOW: testNetwork().cidr,
    ...options.env,
  };

  const controlPlane = new RealProcess({
    name: "control-plane worker",
    entry: "workers/control-plane.ts",
    env: { ...common, DATABASE_URL: database.url, QX_WORKFLOW_BUNDLE: await workflowBundleFile() },
    logFile: path.join(workDir, "control-plane.log"),
    isReady: (p) => polledBy(temporal, controlPlaneQueue, "workflow", p.pid),
  });

  const hosts: ProcessHost[] = [];
  for (let i = 0; i < (options.hostCount ?? 1); i++) {
    const id = `p${suffix}-${String.fromCharCode(97 + i)}`;
    const hostDir = path.join(workDir, id);
    const poolDir = path.join(hostDir, "pool");
    const consoleLogDir = path.join(hostDir, "console");
    const worker = new RealProcess({
      name: `host worker ${id}`,
      entry: "workers/host.ts",
      env: {
        ...common,
        QX_HOST_ID: id,
        QX_LIBVIRT_URI: "qemu:///system",
        QX_DOMAIN_TYPE: "kvm",
        QX_LOCAL_POOL_DIR: poolDir,
        QX_CONSOLE_LOG_DIR: consoleLogDir,
        QX_HOST_STATE_DIR: path.join(hostDir, "state"),
        QX_POOL_REPORT_INTERVAL_MS: "2000",
      },
      logFile: path.join(workDir, `host-${id}.log`),
      isReady: (p) => polledBy(temporal, hostTaskQueue(id), "activity", p.pid),
    });
    hosts.push({ id, poolId: localPoolId(id), poolDir, consoleLogDir, worker });
  }

  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const api = new RealProcess({
    name: "API",
    entry: "api/server.ts",
    env: {
      ...common,
      DATABASE_URL: database.url,
      QX_API_TOKENS: `${TEST_TOKEN}=${TEST_USER}`,
      QX_API_PORT: String(apiPort),
      QX_TEMPORAL_ADDRESS: options.apiTemporalAddress ?? TEST_TEMPORAL_ADDRESS,
      QX_IMAGE_STAGING_DIR: path.join(workDir, "staging"),
    },
    logFile: path.join(workDir, "api.log"),
    isReady: async () => (await fetch(`${apiUrl}/healthz`)).ok,
  });

  const all = () => [api, ...hosts.map((h) => h.worker), controlPlane];
  const { request, waitForOperation } = apiClient(() => apiUrl);
  const system: ProcessSystem = {
    controlPlane,
    hosts,
    api,
    prisma,
    temporal,
    controlPlaneQueue,
    workDir,
    request,
    waitForOperation,
    domainState,
    processes: all,
    async shutdown() {
      await Promise.all(all().map((p) => p.kill()));
      await removeDomains((await prisma.vm.findMany()).map((vm) => vm.id));
      for (const host of hosts) {
        await temporal.workflow.getHandle(monitorHostWorkflowId(host.id)).terminate("test system shut down").catch(() => undefined);
      }
      await connection.close();
      await prisma.$disconnect();
      await database.drop();
      // QX_KEEP_TEST_LOGS=1 keeps each process's log for a look after the run.
      if (!process.env.QX_KEEP_TEST_LOGS) await rm(workDir, { recursive: true, force: true });
    },
  };
  try {
    // The control plane first: a host worker announces itself through a workflow when it starts.
    await controlPlane.start();
    await Promise.all(hosts.map((h) => h.worker.start()));
    await waitUntil(async () => (await prisma.host.count({ where: { id: { in: hosts.map((h) => h.id) } } })) === hosts.length, "hosts announced");
    await api.start();
  } catch (err) {
    await system.shutdown();
    throw err;
  }
  return system;
}

export async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 60_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
