import { z } from "zod";
import { DEFAULT_CONTROL_PLANE_QUEUE } from "./task-queues";
import { DEFAULT_UNDO_DEADLINE_MS } from "./undo-deadline";

/**
 * Configuration from the environment, parsed once per process. Names start with QX_ except the
 * conventional DATABASE_URL. Durations are milliseconds.
 */
export const DEFAULT_POOL_REPORT_INTERVAL_MS = 30_000;
export const DEFAULT_POOL_STALE_AFTER_MS = 3 * DEFAULT_POOL_REPORT_INTERVAL_MS;

const durationMs = (fallback: number) => z.coerce.number().int().positive().default(fallback);
/** Optional in the type so callers that build a config by hand need not name it; the user applies the default. */
const optionalDurationMs = z.coerce.number().int().positive().optional();

const controlPlaneSchema = z.object({
  temporalAddress: z.string().default("127.0.0.1:7233"),
  temporalNamespace: z.string().default("default"),
  temporalUiUrl: z.string().default("http://127.0.0.1:8233"),
  controlPlaneQueue: z.string().default(DEFAULT_CONTROL_PLANE_QUEUE),
  /** How long a host-queue activity may wait for its host's worker before the step fails. */
  hostScheduleToStartMs: durationMs(60_000),
  /** How long undos keep retrying a host that does not answer before recording what is left. */
  undoDeadlineMs: durationMs(DEFAULT_UNDO_DEADLINE_MS),
  /** vCPUs placed per physical core (OpenStack's cpu_allocation_ratio). */
  cpuAllocationRatio: z.coerce.number().positive().default(4),
  memoryAllocationRatio: z.coerce.number().positive().default(1),
  /** Pools' default thin-provisioning ratio (api/pool-capacity.ts; 2 when unset). */
  poolProvisioningRatio: z.coerce.number().positive().optional(),
  /**
   * A host's report on a pool older than this is stale: the pool counts as unusable on that host
   * (placement skips it, the API shows it). Three missed reports at the default 30 s interval.
   */
  poolStaleAfterMs: optionalDurationMs,
  /** Seals pool secrets on their way to hosts (common/sealed-secrets.ts); base64 of 32 bytes. */
  secretsKey: z.string().optional(),
  /** The largest image a download or upload may bring (bytes); a pool's free space may lower it. */
  maxImageBytes: z.coerce.number().int().positive().optional(),
  /** An operator's catalog file, merged over the built-in catalog/images.json. */
  imageCatalogFile: z.string().optional(),
  /** Where the API stages uploaded images until their host has fetched them. */
  imageStagingDir: z.string().optional(),
  /** How often the API removes staged uploads whose image is READY or FAILED. */
  stagingSweepIntervalMs: optionalDurationMs,
  /** The API's URL as hosts reach it (they fetch staged uploads from it); default: where it listens. */
  apiPublicUrl: z.string().url().optional(),
  /** OVN's Northbound database (tcp:HOST:PORT or unix:PATH), which the control-plane worker writes. */
  ovnNbRemote: z.string().optional(),
  /** Private networks and host names downloads may reach (common/fetch-policy.ts); the hosts' own list is the one enforced. */
  fetchAllow: z.string().optional(),
  /** How often the control-plane worker starts committed operations whose workflow the API did not start. */
  outboxSweepIntervalMs: optionalDurationMs,
  /** An operation younger than this is left to the API that is starting it (its start deadline is 5 s). */
  outboxGraceMs: optionalDurationMs,
  /** How long an upgraded guest agent has to answer with its new version before it is rolled back. */
  agentStartTimeoutMs: optionalDurationMs,
  /** The largest guest file GET .../agent/files/content streams, and the largest a PUT writes (bytes). */
  guestFileMaxReadBytes: z.coerce.number().int().positive().optional(),
  guestFileMaxWriteBytes: z.coerce.number().int().positive().optional(),
});

export const DEFAULT_OUTBOX_SWEEP_INTERVAL_MS = 5_000;
export const DEFAULT_OUTBOX_GRACE_MS = 10_000;

export const DEFAULT_GUEST_FILE_MAX_READ_BYTES = 64 * 1024 ** 2;
export const DEFAULT_GUEST_FILE_MAX_WRITE_BYTES = 16 * 1024 ** 2;

export const DEFAULT_AGENT_START_TIMEOUT_MS = 120_000;

export const DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 ** 3;
export const DEFAULT_STAGING_SWEEP_INTERVAL_MS = 10_000;
/** Where run-system.sh starts the Northbound database (scripts/services/ovn.sh). */
export const DEFAULT_OVN_NB_REMOTE = "tcp:127.0.0.1:6641";

export type ControlPlaneConfig = z.infer<typeof controlPlaneSchema>;

export function controlPlaneConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ControlPlaneConfig {
  return controlPlaneSchema.parse({
    temporalAddress: env.QX_TEMPORAL_ADDRESS,
    temporalNamespace: env.QX_TEMPORAL_NAMESPACE,
    temporalUiUrl: env.QX_TEMPORAL_UI_URL,
    controlPlaneQueue: env.QX_CONTROL_PLANE_QUEUE,
    hostScheduleToStartMs: env.QX_HOST_SCHEDULE_TO_START_MS,
    undoDeadlineMs: env.QX_UNDO_DEADLINE_MS,
    cpuAllocationRatio: env.QX_CPU_ALLOCATION_RATIO,
    memoryAllocationRatio: env.QX_MEMORY_ALLOCATION_RATIO,
    poolProvisioningRatio: env.QX_POOL_PROVISIONING_RATIO,
    poolStaleAfterMs: env.QX_POOL_STALE_AFTER_MS,
    secretsKey: env.QX_SECRETS_KEY || undefined,
    maxImageBytes: env.QX_MAX_IMAGE_BYTES,
    imageCatalogFile: env.QX_IMAGE_CATALOG_FILE,
    imageStagingDir: env.QX_IMAGE_STAGING_DIR,
    stagingSweepIntervalMs: env.QX_STAGING_SWEEP_INTERVAL_MS,
    apiPublicUrl: env.QX_API_PUBLIC_URL,
    ovnNbRemote: env.QX_OVN_NB_REMOTE,
    fetchAllow: env.QX_FETCH_ALLOW,
    outboxSweepIntervalMs: env.QX_OUTBOX_SWEEP_INTERVAL_MS,
    outboxGraceMs: env.QX_OUTBOX_GRACE_MS,
    agentStartTimeoutMs: env.QX_AGENT_START_TIMEOUT_MS,
    guestFileMaxReadBytes: env.QX_GUEST_FILE_MAX_READ_BYTES,
    guestFileMaxWriteBytes: env.QX_GUEST_FILE_MAX_WRITE_BYTES,
  });
}

const hostSchema = z.object({
  hostId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "host id: lowercase letters, digits and dashes"),
  temporalAddress: z.string().default("127.0.0.1:7233"),
  temporalNamespace: z.string().default("default"),
  controlPlaneQueue: z.string().default(DEFAULT_CONTROL_PLANE_QUEUE),
  libvirtUri: z.string().default("qemu:///system"),
  /** "kvm", "qemu" (TCG), or unset to pick kvm when /dev/kvm exists. */
  domainType: z.enum(["kvm", "qemu"]).optional(),
  /** Root directory of this host's local directory pool. */
  localPoolDir: z.string(),
  /** Opens the pool secrets the control plane sealed (common/sealed-secrets.ts). */
  secretsKey: z.string().optional(),
  /** Where console logs of guests are written. */
  consoleLogDir: z.string(),
  /** Private state of this worker (definitions of the pools assigned to it); default: beside the local pool. */
  stateDir: z.string().optional(),
  /** How often each pool's health and capacity are reported to the control plane. */
  poolReportIntervalMs: optionalDurationMs,
  /** Image downloads running at once on this host (the download worker's slots). */
  maxConcurrentDownloads: z.coerce.number().int().positive().optional(),
  /** Cadence of download heartbeats: progress shown, and at most this much re-fetched after a crash. */
  imageHeartbeatIntervalMs: optionalDurationMs,
  /** OVN chassis (virtual networks): unset Southbound remote = this host joins no network. */
  ovnSbRemote: z.string().optional(),
  /** Defaults: unix:/run/openvswitch/db.sock, 127.0.0.1, br-int, system, /var/run/ovn (activities/ovn/chassis.ts). */
  ovsDb: z.string().optional(),
  ovnEncapIp: z.string().optional(),
  ovnBridge: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/).optional(),
  ovsDatapathType: z.enum(["system", "netdev"]).optional(),
  ovnRundir: z.string().optional(),
  /** Provider networks, "physnet1:br-ext,physnet2:br-vlan": network name → OVS bridge. */
  ovnBridgeMappings: z.string().optional(),
  /** Private networks and host names image downloads may reach (common/fetch-policy.ts), comma-separated. */
  fetchAllow: z.string().optional(),
  /** Stall detection of image downloads (activities/images/transfer-meter.ts): the floor... */
  downloadStallWindowMs: optionalDurationMs,
  downloadStallMinBytes: z.coerce.number().int().nonnegative().optional(),
  /** ...no byte (or no response) for this long... */
  downloadIdleTimeoutMs: optionalDurationMs,
  /** ...and how many stalled attempts are retried before DOWNLOAD_STALLED is final. */
  downloadStallRetries: z.coerce.number().int().nonnegative().optional(),
  /** How often every guest's agent is asked for its status (connects and disconnects are reported at once). */
  agentStatusIntervalMs: optionalDurationMs,
  /** This host's library of guest agent packages (quantix-agent-<version>.tar; README "Guest agent"). */
  agentPackageDir: z.string().optional(),
});

export const DEFAULT_MAX_CONCURRENT_DOWNLOADS = 2;
export const DEFAULT_AGENT_STATUS_INTERVAL_MS = 30_000;
export const DEFAULT_AGENT_PACKAGE_DIR = "/var/lib/quantix/agent-packages";
export const DEFAULT_IMAGE_HEARTBEAT_INTERVAL_MS = 1_000;

export type HostWorkerConfig = z.infer<typeof hostSchema>;

export function hostConfigFromEnv(env: NodeJS.ProcessEnv = process.env): HostWorkerConfig {
  return hostSchema.parse({
    hostId: env.QX_HOST_ID,
    temporalAddress: env.QX_TEMPORAL_ADDRESS,
    temporalNamespace: env.QX_TEMPORAL_NAMESPACE,
    controlPlaneQueue: env.QX_CONTROL_PLANE_QUEUE,
    libvirtUri: env.QX_LIBVIRT_URI,
    domainType: env.QX_DOMAIN_TYPE || undefined,
    localPoolDir: env.QX_LOCAL_POOL_DIR ?? "/var/lib/quantix/pools/local",
    secretsKey: env.QX_SECRETS_KEY || undefined,
    consoleLogDir: env.QX_CONSOLE_LOG_DIR ?? "/var/log/quantix/console",
    stateDir: env.QX_HOST_STATE_DIR,
    poolReportIntervalMs: env.QX_POOL_REPORT_INTERVAL_MS,
    maxConcurrentDownloads: env.QX_MAX_CONCURRENT_DOWNLOADS,
    imageHeartbeatIntervalMs: env.QX_IMAGE_HEARTBEAT_INTERVAL_MS,
    ovnSbRemote: env.QX_OVN_SB_REMOTE || undefined,
    ovsDb: env.QX_OVS_DB || undefined,
    ovnEncapIp: env.QX_OVN_ENCAP_IP || undefined,
    ovnBridge: env.QX_OVN_BRIDGE || undefined,
    ovsDatapathType: env.QX_OVS_DATAPATH_TYPE || undefined,
    ovnRundir: env.QX_OVN_RUNDIR || undefined,
    ovnBridgeMappings: env.QX_OVN_BRIDGE_MAPPINGS,
    fetchAllow: env.QX_FETCH_ALLOW,
    downloadStallWindowMs: env.QX_DOWNLOAD_STALL_WINDOW_MS,
    downloadStallMinBytes: env.QX_DOWNLOAD_STALL_MIN_BYTES,
    downloadIdleTimeoutMs: env.QX_DOWNLOAD_IDLE_TIMEOUT_MS,
    downloadStallRetries: env.QX_DOWNLOAD_STALL_RETRIES,
    agentStatusIntervalMs: env.QX_AGENT_STATUS_INTERVAL_MS,
    agentPackageDir: env.QX_AGENT_PACKAGE_DIR,
  });
}

/** The id of the local directory pool a host announces: one per host. */
export function localPoolId(hostId: string): string {
  return `local-${hostId}`;
}
