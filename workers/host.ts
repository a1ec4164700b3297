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
import { NativeConnection, Worker } from "@temporalio/worker";
import { Client, Connection } from "@temporalio/client";
import { createHostActivities, type HostActivities } from "../activities/host";
import type { HostFacts } from "../activities/database/hosts";
import { connectLibvirt } from "../activities/libvirt/libvirt-hypervisor";
import type { Hypervisor } from "../activities/libvirt/hypervisor";
import { createLocalDirBackend } from "../activities/storage/local-dir";
import { createPoolRegistry, type PoolRegistry } from "../activities/storage/pool-registry";
import { hostConfigFromEnv, localPoolId, type HostWorkerConfig } from "../common/config";
import { announceHostWorkflowId } from "../common/operations";
import { hostTaskQueue } from "../common/task-queues";

export interface HostRuntime {
  config: HostWorkerConfig;
  hypervisor: Hypervisor;
  pools: PoolRegistry;
  domainType: "kvm" | "qemu";
  activities: HostActivities;
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

/** Connects this host's clients and builds its activities. */
export async function createHostRuntime(config: HostWorkerConfig): Promise<HostRuntime> {
  await mkdir(config.localPoolDir, { recursive: true });
  await mkdir(config.consoleLogDir, { recursive: true });
  const hypervisor = await connectLibvirt(config.libvirtUri);
  const pools = createPoolRegistry({ [localPoolId(config.hostId)]: createLocalDirBackend({ root: config.localPoolDir }) });
  const domainType = await detectDomainType(config);
  const activities = createHostActivities({ hypervisor, pools, config: { domainType, consoleLogDir: config.consoleLogDir } });
  return { config, hypervisor, pools, domainType, activities };
}

export async function hostFacts(runtime: HostRuntime): Promise<HostFacts> {
  const node = await runtime.hypervisor.nodeFacts();
  const pools = await Promise.all(
    runtime.pools.entries().map(async ([id, backend]) => {
      const status = await backend.status();
      return {
        id,
        name: id,
        kind: "dir" as const,
        config: { path: runtime.config.localPoolDir },
        capacityBytes: status.capacityBytes,
        freeBytes: status.freeBytes,
        volumeCount: status.volumeCount,
        health: status.health,
      };
    }),
  );
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

export interface HostWorkerOptions {
  connection: NativeConnection;
  runtime: HostRuntime;
  /** Replaces the runtime's activities (tests wrap them to inject failures). */
  activities?: HostActivities;
}

export function createHostWorker(options: HostWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.runtime.config.temporalNamespace,
    taskQueue: hostTaskQueue(options.runtime.config.hostId),
    activities: options.activities ?? options.runtime.activities,
    // A cancel reaches an activity only with a heartbeat's reply. The SDK's default throttle for
    // activities without a heartbeat timeout is 30 s, too slow for a user's cancel; 1 s is cheap.
    defaultHeartbeatThrottleInterval: "1s",
    maxHeartbeatThrottleInterval: "1s",
  });
}

async function main(): Promise<void> {
  const config = hostConfigFromEnv();
  const runtime = await createHostRuntime(config);
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const worker = await createHostWorker({ connection, runtime });
  const clientConnection = await Connection.connect({ address: config.temporalAddress });
  const client = new Client({ connection: clientConnection, namespace: config.temporalNamespace });
  const running = worker.run();
  await announceHost(client, runtime);
  console.log(`host worker ${config.hostId} polling ${hostTaskQueue(config.hostId)} (${config.libvirtUri}, ${runtime.domainType})`);
  await running;
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
