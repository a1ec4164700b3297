/**
 * The host worker: one process per hypervisor host, serving only that host's queue
 * (`host.<hostId>`) with activities that touch this machine's libvirt and storage. It announces
 * the host to the control plane when it starts. Configured from the environment:
 *
 *   QX_HOST_ID=host-a QX_TEMPORAL_ADDRESS=10.0.0.5:7233 QX_LIBVIRT_URI=qemu:///system \
 *   QX_LOCAL_POOL_DIR=/var/lib/quantix/pools/local tsx workers/host.ts
 */
import { constants } from "node:fs";
import { access, mkdir } from "node:fs/promises";
import path from "node:path";
import { NativeConnection, Runtime, Worker, type ActivityInterceptorsFactory } from "@temporalio/worker";
import { stepLogAttributes } from "../activities/step-log-attributes";
import { Client, Connection } from "@temporalio/client";
import { createHostActivities, type HostActivities } from "../activities/host";
import { DEFAULT_FETCH_POLICY } from "../activities/images/http-get";
import { createPoolImageActivities } from "../activities/images/pool-images";
import { DEFAULT_STALL_POLICY } from "../activities/images/transfer-meter";
import type { HostFacts } from "../activities/database/hosts";
import { connectLibvirt } from "../activities/libvirt/libvirt-hypervisor";
import { createVirshGuestAgent, type GuestAgent } from "../activities/guest-agent/agent-client";
import { startGuestAgentReporter } from "./guest-agent-reporter";
import type { Hypervisor } from "../activities/libvirt/hypervisor";
import { createLocalDirBackend } from "../activities/storage/local-dir";
import { createPoolRegistry, type PoolRegistry } from "../activities/storage/pool-registry";
import { reportPools } from "../activities/storage/pool-activities";
import {
  DEFAULT_AGENT_PACKAGE_DIR,
  DEFAULT_IMAGE_HEARTBEAT_INTERVAL_MS,
  DEFAULT_MAX_CONCURRENT_DOWNLOADS,
  DEFAULT_POOL_REPORT_INTERVAL_MS,
  hostConfigFromEnv,
  localPoolId,
  type HostWorkerConfig,
} from "../common/config";
import { announceHostWorkflowId, monitorHostWorkflowId } from "../common/operations";
import { parseFetchAllowList } from "../common/fetch-policy";
import { parseSecretsKey } from "../common/sealed-secrets";
import { hostDownloadQueue, hostTaskQueue } from "../common/task-queues";
import { keepAliveHeartbeats } from "./keep-alive-heartbeats";
import { workerLogger } from "../common/worker-logger";
import { chassisConfigOf, createChassis, type Chassis } from "../activities/ovn/chassis";

export interface HostRuntime {
  config: HostWorkerConfig;
  hypervisor: Hypervisor;
  pools: PoolRegistry;
  domainType: "kvm" | "qemu";
  /** The guest agents of this host's domains (through libvirt). */
  agent: GuestAgent;
  activities: HostActivities;
  /** This host's OVN chassis, when it joins virtual networks (QX_OVN_SB_REMOTE). */
  chassis: Chassis | null;
}

/** KVM when this host has /dev/kvm; TCG otherwise (slow, but runs anywhere). */
async function detectDomainType(config: HostWorkerConfig): Promise<"kvm" | "qemu"> {
  if (config.domainType) return config.domainType;
  if (config.libvirtUri.startsWith("test:")) return "kvm";
  try {
    await access("/dev/kvm", constants.R_OK | constants.W_OK);
    return "kvm";
  } catch {
    return "qemu";
  }
}

function hostStateDir(config: HostWorkerConfig): string {
  return config.stateDir ?? path.join(path.dirname(path.resolve(config.localPoolDir)), "host-state");
}

/** Connects this host's clients and builds its activities. */
export async function createHostRuntime(config: HostWorkerConfig): Promise<HostRuntime> {
  await mkdir(config.localPoolDir, { recursive: true });
  await mkdir(config.consoleLogDir, { recursive: true });
  const hypervisor = await connectLibvirt(config.libvirtUri);
  const pools = createPoolRegistry(
    { [localPoolId(config.hostId)]: createLocalDirBackend({ root: config.localPoolDir }) },
    { stateDir: hostStateDir(config), libvirtUri: config.libvirtUri, secretsKey: parseSecretsKey(config.secretsKey) },
  );
  await pools.restore();
  const domainType = await detectDomainType(config);
  // Images need a directory on this host: for now the local pool's.
  const images = createPoolImageActivities(
    { [localPoolId(config.hostId)]: config.localPoolDir },
    {
      heartbeatIntervalMs: config.imageHeartbeatIntervalMs ?? DEFAULT_IMAGE_HEARTBEAT_INTERVAL_MS,
      fetchPolicy: { ...DEFAULT_FETCH_POLICY, allow: parseFetchAllowList(config.fetchAllow) },
      stall: {
        windowMs: config.downloadStallWindowMs ?? DEFAULT_STALL_POLICY.windowMs,
        minBytes: config.downloadStallMinBytes ?? DEFAULT_STALL_POLICY.minBytes,
        idleMs: config.downloadIdleTimeoutMs ?? DEFAULT_STALL_POLICY.idleMs,
        retries: config.downloadStallRetries ?? DEFAULT_STALL_POLICY.retries,
      },
    },
    parseSecretsKey(config.secretsKey),
  );
  const chassisConfig = chassisConfigOf(config);
  const chassis = chassisConfig && createChassis(config.hostId, chassisConfig);
  // A chassis that cannot be set up now reports unhealthy (placement skips the host for VMs with
  // NICs) instead of keeping the worker from serving everything else.
  await chassis?.configure().catch((err: unknown) => console.error(`[host ${config.hostId}] OVN chassis set-up failed:`, err));
  const agent = createVirshGuestAgent(config.libvirtUri);
  const agentPackageDir = config.agentPackageDir ?? DEFAULT_AGENT_PACKAGE_DIR;
  const activities = createHostActivities({
    hypervisor,
    agent,
    agentPackageDir,
    pools,
    config: { domainType, consoleLogDir: config.consoleLogDir, installation: config.controlPlaneQueue, integrationBridge: chassisConfig?.bridge ?? "br-int" },
    images,
  });
  return { config, hypervisor, pools, domainType, agent, activities, chassis };
}

export async function hostFacts(runtime: HostRuntime): Promise<HostFacts> {
  const node = await runtime.hypervisor.nodeFacts();
  // Only the local pool is announced: assigned pools are the control plane's to describe.
  const id = localPoolId(runtime.config.hostId);
  const status = await runtime.pools.get(id).status();
  const pools = [
    {
      id,
      name: id,
      kind: "dir" as const,
      config: { path: runtime.config.localPoolDir },
      capacityBytes: status.capacityBytes,
      freeBytes: status.freeBytes,
      volumeCount: status.volumeCount,
      health: status.health,
    },
  ];
  return {
    hostId: runtime.config.hostId,
    hostname: node.hostname,
    cpuCount: node.cpus,
    memoryMiB: node.memoryMiB,
    libvirtUri: runtime.config.libvirtUri,
    domainType: runtime.domainType,
    pools,
  };
}

/** Records this host with the control plane (through a workflow: host workers hold no database credentials). */
export async function announceHost(client: Client, runtime: HostRuntime): Promise<void> {
  const handle = await client.workflow.start("announceHost", {
    taskQueue: runtime.config.controlPlaneQueue,
    workflowId: announceHostWorkflowId(runtime.config.hostId),
    workflowIdConflictPolicy: "TERMINATE_EXISTING",
    args: [await hostFacts(runtime)],
  });
  await handle.result();
}

/** Sends one report on every pool of this host to its monitor workflow (started if not running). */
export async function reportPoolHealth(client: Client, runtime: HostRuntime): Promise<void> {
  const report = { hostId: runtime.config.hostId, pools: await reportPools(runtime.pools), chassis: (await runtime.chassis?.health()) ?? null };
  await client.workflow.signalWithStart("monitorHost", {
    taskQueue: runtime.config.controlPlaneQueue,
    workflowId: monitorHostWorkflowId(runtime.config.hostId),
    args: [runtime.config.hostId],
    signal: "poolReport",
    signalArgs: [report],
  });
}

export interface PoolReporter {
  stop(): Promise<void>;
}

/**
 * Reports pool health now and then every interval (QX_POOL_REPORT_INTERVAL_MS, 30 s by default).
 * A failed report is logged and the next one tries again: the control plane marks the pools stale
 * if reports keep failing, which is the signal an operator needs.
 */
export function startPoolReporter(client: Client, runtime: HostRuntime): PoolReporter {
  const interval = runtime.config.poolReportIntervalMs ?? DEFAULT_POOL_REPORT_INTERVAL_MS;
  let inFlight: Promise<void> = Promise.resolve();
  const tick = () => {
    inFlight = inFlight.then(() =>
      reportPoolHealth(client, runtime).catch((err: unknown) => console.error(`[host ${runtime.config.hostId}] pool report failed:`, err)),
    );
  };
  tick();
  const timer = setInterval(tick, interval);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}

export interface HostWorkerOptions {
  connection: NativeConnection;
  runtime: HostRuntime;
  /** Replaces the runtime's activities (tests wrap them to inject failures). */
  activities?: HostActivities;
  /** More activity interceptors, after the step logger (tests inject failures by step). */
  activityInterceptors?: ActivityInterceptorsFactory[];
}

function activityInterceptors(options: HostWorkerOptions) {
  return { activity: [keepAliveHeartbeats(), stepLogAttributes, ...(options.activityInterceptors ?? [])] };
}

export function createHostWorker(options: HostWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.runtime.config.temporalNamespace,
    taskQueue: hostTaskQueue(options.runtime.config.hostId),
    activities: options.activities ?? options.runtime.activities,
    interceptors: activityInterceptors(options),
    // A cancel reaches an activity only with a heartbeat's reply. The SDK's default throttle for
    // activities without a heartbeat timeout is 30 s, too slow for a user's cancel; 1 s is cheap.
    defaultHeartbeatThrottleInterval: "1s",
    maxHeartbeatThrottleInterval: "1s",
  });
}

/**
 * The host's second worker, on its download queue: its slots (QX_MAX_CONCURRENT_DOWNLOADS) cap the
 * image downloads running here at once, and a host busy downloading still answers VM calls at once
 * on the main queue. Heartbeats are forwarded at the activity's own cadence (the SDK would otherwise
 * hold them back up to 80% of the heartbeat timeout), so live progress and the resume point stay fresh.
 */
export function createHostDownloadWorker(options: HostWorkerOptions): Promise<Worker> {
  const { config } = options.runtime;
  return Worker.create({
    connection: options.connection,
    namespace: config.temporalNamespace,
    taskQueue: hostDownloadQueue(config.hostId),
    activities: options.activities ?? options.runtime.activities,
    interceptors: activityInterceptors(options),
    maxConcurrentActivityTaskExecutions: config.maxConcurrentDownloads ?? DEFAULT_MAX_CONCURRENT_DOWNLOADS,
    maxHeartbeatThrottleInterval: config.imageHeartbeatIntervalMs ?? DEFAULT_IMAGE_HEARTBEAT_INTERVAL_MS,
  });
}

async function main(): Promise<void> {
  const config = hostConfigFromEnv();
  Runtime.install({ logger: workerLogger(`host ${config.hostId}`) });
  const runtime = await createHostRuntime(config);
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const worker = await createHostWorker({ connection, runtime });
  const downloadWorker = await createHostDownloadWorker({ connection, runtime });
  const clientConnection = await Connection.connect({ address: config.temporalAddress });
  const client = new Client({ connection: clientConnection, namespace: config.temporalNamespace });
  const running = Promise.all([worker.run(), downloadWorker.run()]);
  await announceHost(client, runtime);
  const reporter = startPoolReporter(client, runtime);
  const agentReporter = startGuestAgentReporter(client, runtime);
  console.log(`host worker ${config.hostId} polling ${hostTaskQueue(config.hostId)} (${config.libvirtUri}, ${runtime.domainType})`);
  await running;
  await reporter.stop();
  await agentReporter.stop();
  await runtime.hypervisor.close();
  await clientConnection.close();
  await connection.close();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
