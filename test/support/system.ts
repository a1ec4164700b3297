import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import type { PrismaClient } from "@prisma/client";
import { Client, Connection } from "@temporalio/client";
import { NativeConnection, Runtime, bundleWorkflowCode, type Worker, type WorkflowBundle } from "@temporalio/worker";
import { createDatabaseActivities, type DatabaseActivities } from "../../activities/database";
import type { HostActivities } from "../../activities/host";
import { parseApiTokens } from "../../api/auth";
import { startApi, type RunningApi } from "../../api/server";
import type { ControlPlaneConfig } from "../../common/config";
import { localPoolId } from "../../common/config";
import { createPrismaClient } from "../../common/database";
import { startGuestAgentReporter, type GuestAgentReporter } from "../../workers/guest-agent-reporter";
import { announceHost, createHostDownloadWorker, createHostRuntime, createHostWorker, reportPoolHealth, startPoolReporter, type HostRuntime, type PoolReporter } from "../../workers/host";
import { monitorHostWorkflowId, recordGuestAgentsWorkflowId } from "../../common/operations";
import { createControlPlaneWorker, WORKFLOW_INTERCEPTOR_MODULES } from "../../workers/control-plane";
import { FaultPlan } from "./faults";
import { apiClient, domainState, removeDomains, TEST_TOKEN, TEST_USER, type ApiClient } from "./api-client";
import { createTestDatabase } from "./test-database";
import { TEST_PORTS, TEST_TEMPORAL_ADDRESS, testPaths } from "./test-env";
import { createNetworkActivities, type NetworkActivities } from "../../activities/ovn/nb-activities";
import { createNorthbound } from "../../activities/ovn/northbound";
import { createOvsdbClient } from "../../activities/ovn/ovsdb-client";
import type { OvnStack } from "./ovn";
import { testNetwork } from "./test-network";
import type { StallPolicy } from "../../activities/images/transfer-meter";

export { TEST_TOKEN, TEST_USER };
/** Seals pool secrets between the test control plane and its hosts, as QX_SECRETS_KEY does. */
export const TEST_SECRETS_KEY = randomBytes(32).toString("base64");

let sharedBundle: Promise<WorkflowBundle> | undefined;

/** The workflows, bundled once per test file (bundling takes seconds; workers reuse it). */
function workflowBundle(): Promise<WorkflowBundle> {
  sharedBundle ??= bundleWorkflowCode({
    workflowsPath: require.resolve("../../workflows"),
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: quietLogger,
  });
  return sharedBundle;
}

// Workers log every failed workflow at WARN; the tests assert those failures, so only errors are shown.
const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never;

interface RunningWorker {
  worker: Worker;
  done: Promise<void>;
}

async function run(worker: Worker): Promise<RunningWorker> {
  const done = worker.run();
  return { worker, done };
}

async function stop(running: RunningWorker | undefined): Promise<void> {
  if (!running) return;
  if (running.worker.getState() === "RUNNING") running.worker.shutdown();
  await running.done;
}

export interface TestHost {
  id: string;
  runtime: HostRuntime;
  poolId: string;
  poolDir: string;
  /** Where its guests' console logs go (clean-slate checks read it). */
  consoleLogDir: string;
  worker?: RunningWorker;
  /** The host's second worker, on its image download queue. */
  downloadWorker?: RunningWorker;
  reporter?: PoolReporter;
  /** The host's guest agent status reporter (workers/guest-agent-reporter.ts). */
  agentReporter?: GuestAgentReporter;
}

export interface TestSystem extends ApiClient {
  api: RunningApi;
  prisma: PrismaClient;
  temporal: Client;
  config: ControlPlaneConfig;
  hosts: TestHost[];
  /** The real database activities; wrap them to inject failures. */
  databaseActivities: DatabaseActivities;
  /** The real OVN Northbound activities of the control plane; wrap them to inject failures. */
  networkActivities: NetworkActivities;
  /** Faults by saga step, on every worker of this system (faults.ts). */
  faults: FaultPlan;
  /** Restarts the control-plane worker, optionally with replaced database activities. */
  restartControlPlane(activities?: DatabaseActivities, networkActivities?: NetworkActivities): Promise<void>;
  stopHostWorker(host: TestHost): Promise<void>;
  /** (Re)starts a host's worker, optionally with replaced host activities. */
  startHostWorker(host: TestHost, activities?: HostActivities): Promise<void>;
  /** Sends one pool report of the host now (the periodic reporter runs too unless stopped). */
  reportPools(host: TestHost): Promise<void>;
  /** Stops the host's periodic pool reports (as if the host went silent). */
  stopPoolReporter(host: TestHost): Promise<void>;
  /** libvirt's view of a VM's domain: its state, or null when no such domain is defined. */
  domainState(vmId: string): Promise<string | null>;
  shutdown(): Promise<void>;
}

export interface TestSystemOptions {
  hostCount?: number;
  hostScheduleToStartMs?: number;
  /** QX_UNDO_DEADLINE_MS: tests default to 20 s (a host away longer leaves its undo failed). */
  undoDeadlineMs?: number;
  /** How often each host reports its pools (QX_POOL_REPORT_INTERVAL_MS); tests default to 2 s. */
  poolReportIntervalMs?: number;
  /** When a pool report goes stale (QX_POOL_STALE_AFTER_MS); tests default to 60 s. */
  poolStaleAfterMs?: number;
  /** The largest image accepted (QX_MAX_IMAGE_BYTES). */
  maxImageBytes?: number;
  /** Cadence of download heartbeats (QX_IMAGE_HEARTBEAT_INTERVAL_MS); tests default to 250 ms. */
  imageHeartbeatIntervalMs?: number;
  /** Stall detection of downloads (QX_DOWNLOAD_STALL_*): a test's own short window instead of minutes. */
  downloadStall?: Partial<StallPolicy>;
  /** The hosts' domain type (QX_DOMAIN_TYPE): "kvm" boots firmware-only guests here, a Linux guest needs "qemu" (TCG). */
  domainType?: "kvm" | "qemu";
  /**
   * Virtual networks: the control plane writes the stack's Northbound, and host i is the chassis
   * `chassis[i]` of the stack (its worker configures it: system-id = host id), with the provider
   * bridge mappings given for it.
   */
  ovn?: { stack: OvnStack; chassis: string[]; bridgeMappings?: (string | undefined)[] };
  /** How often the hosts ask every guest agent (QX_AGENT_STATUS_INTERVAL_MS; default 30 s). */
  agentStatusIntervalMs?: number;
  /** How long an upgraded agent has to answer before it is rolled back (QX_AGENT_START_TIMEOUT_MS). */
  agentStartTimeoutMs?: number;
}

/**
 * A whole Quantix system for one test file, on the real services from global-setup: its own
 * PostgreSQL database (cloned from the migrated template), its own control-plane queue and host
 * ids on the shared Temporal server, real host workers driving the real libvirtd, and the API
 * in-process on a random port.
 */
export async function startTestSystem(options: TestSystemOptions = {}): Promise<TestSystem> {
  Runtime.install({ logger: quietLogger });
  const suffix = randomBytes(4).toString("hex");
  const database = await createTestDatabase(suffix);
  const databaseUrl = database.url;

  const config: ControlPlaneConfig = {
    temporalAddress: TEST_TEMPORAL_ADDRESS,
    temporalNamespace: "default",
    temporalUiUrl: `http://127.0.0.1:${TEST_PORTS.temporalUi}`,
    controlPlaneQueue: `control-plane-${suffix}`,
    hostScheduleToStartMs: options.hostScheduleToStartMs ?? 30_000,
    undoDeadlineMs: options.undoDeadlineMs ?? 20_000,
    cpuAllocationRatio: 4,
    memoryAllocationRatio: 1,
    poolStaleAfterMs: options.poolStaleAfterMs ?? 60_000,
    secretsKey: TEST_SECRETS_KEY,
    maxImageBytes: options.maxImageBytes,
    imageStagingDir: path.join(testPaths.dataDir, `test-system-${suffix}`, "staging"),
    stagingSweepIntervalMs: 500,
    ovnNbRemote: options.ovn?.stack.nbRemote,
    // The test web servers' network is a private one: admitted as an operator admits a mirror.
    fetchAllow: testNetwork().cidr,
    agentStartTimeoutMs: options.agentStartTimeoutMs,
  };
  const prisma = createPrismaClient(databaseUrl);
  const nativeConnection = await NativeConnection.connect({ address: TEST_TEMPORAL_ADDRESS });
  const clientConnection = await Connection.connect({ address: TEST_TEMPORAL_ADDRESS });
  const temporal = new Client({ connection: clientConnection });
  const bundle = await workflowBundle();
  const databaseActivities = createDatabaseActivities(prisma, config);
  const nbClient = createOvsdbClient(options.ovn?.stack.nbRemote ?? "tcp:127.0.0.1:6641");
  const networkActivities = createNetworkActivities(createNorthbound(nbClient));
  const faults = new FaultPlan();

  let controlPlane: RunningWorker | undefined;
  const restartControlPlane = async (activities?: DatabaseActivities, replacedNetworkActivities?: NetworkActivities) => {
    await stop(controlPlane);
    controlPlane = await run(
      await createControlPlaneWorker({
        connection: nativeConnection,
        config,
        prisma,
        workflowBundle: bundle,
        activities: activities ?? databaseActivities,
        networkActivities: replacedNetworkActivities ?? networkActivities,
        activityInterceptors: [faults.interceptor],
      }),
    );
  };
  await restartControlPlane();

  const workDir = path.join(testPaths.dataDir, `test-system-${suffix}`);
  const hosts: TestHost[] = [];
  for (let i = 0; i < (options.hostCount ?? 1); i++) {
    const id = `t${suffix}-${String.fromCharCode(97 + i)}`;
    const poolDir = path.join(workDir, id, "pool");
    const chassis = options.ovn?.stack.chassis.find((c) => c.name === options.ovn?.chassis[i]);
    const runtime = await createHostRuntime({
      hostId: id,
      temporalAddress: TEST_TEMPORAL_ADDRESS,
      temporalNamespace: "default",
      controlPlaneQueue: config.controlPlaneQueue,
      libvirtUri: "qemu:///system",
      domainType: options.domainType ?? "kvm",
      localPoolDir: poolDir,
      consoleLogDir: path.join(workDir, id, "console"),
      stateDir: path.join(workDir, id, "state"),
      poolReportIntervalMs: options.poolReportIntervalMs ?? 2_000,
      imageHeartbeatIntervalMs: options.imageHeartbeatIntervalMs ?? 250,
      downloadStallWindowMs: options.downloadStall?.windowMs,
      downloadStallMinBytes: options.downloadStall?.minBytes,
      downloadIdleTimeoutMs: options.downloadStall?.idleMs,
      downloadStallRetries: options.downloadStall?.retries,
      fetchAllow: testNetwork().cidr,
      agentStatusIntervalMs: options.agentStatusIntervalMs,
      agentPackageDir: path.join(workDir, id, "agent-packages"),
      secretsKey: TEST_SECRETS_KEY,
      ...(chassis
        ? {
            ovnSbRemote: options.ovn!.stack.sbRemote,
            ovsDb: chassis.ovsDb,
            ovnEncapIp: chassis.encapIp,
            ovsDatapathType: "netdev" as const,
            ovnRundir: chassis.rundir,
            ovnBridgeMappings: options.ovn!.bridgeMappings?.[i],
          }
        : {}),
    });
    hosts.push({ id, runtime, poolId: localPoolId(id), poolDir, consoleLogDir: runtime.config.consoleLogDir });
  }

  const stopHostWorkers = async (host: TestHost) => {
    await Promise.all([stop(host.worker), stop(host.downloadWorker)]);
    host.worker = undefined;
    host.downloadWorker = undefined;
  };
  const startHostWorker = async (host: TestHost, activities?: HostActivities) => {
    await stopHostWorkers(host);
    const options = { connection: nativeConnection, runtime: host.runtime, activities, activityInterceptors: [faults.interceptor] };
    host.worker = await run(await createHostWorker(options));
    host.downloadWorker = await run(await createHostDownloadWorker(options));
  };
  for (const host of hosts) {
    await startHostWorker(host);
    await announceHost(temporal, host.runtime);
    host.reporter = startPoolReporter(temporal, host.runtime);
    host.agentReporter = startGuestAgentReporter(temporal, host.runtime);
  }

  const api = await startApi({ databaseUrl, config, tokens: parseApiTokens(`${TEST_TOKEN}=${TEST_USER}`), port: 0 });

  const { request, waitForOperation } = apiClient(() => api.url);

  return {
    api,
    prisma,
    temporal,
    config,
    hosts,
    databaseActivities,
    networkActivities,
    faults,
    request,
    restartControlPlane,
    stopHostWorker: stopHostWorkers,
    startHostWorker,
    reportPools: (host) => reportPoolHealth(temporal, host.runtime),
    async stopPoolReporter(host) {
      await host.reporter?.stop();
      host.reporter = undefined;
    },
    waitForOperation,
    domainState,
    async shutdown() {
      // Leave no guest behind, whatever a failed test left.
      await removeDomains((await prisma.vm.findMany()).map((vm) => vm.id));
      await api.stop();
      for (const host of hosts) {
        await host.reporter?.stop();
        await host.agentReporter?.stop();
        await temporal.workflow.getHandle(monitorHostWorkflowId(host.id)).terminate("test system shut down").catch(() => undefined);
        await temporal.workflow.getHandle(recordGuestAgentsWorkflowId(host.id)).terminate("test system shut down").catch(() => undefined);
      }
      await stop(controlPlane);
      for (const host of hosts) {
        await stopHostWorkers(host);
        await host.runtime.hypervisor.close();
      }
      await nbClient.close();
      await clientConnection.close();
      await nativeConnection.close();
      await prisma.$disconnect();
      await rm(workDir, { recursive: true, force: true });
      await database.drop();
    },
  };
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}
