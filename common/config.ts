import { z } from "zod";
import { DEFAULT_CONTROL_PLANE_QUEUE } from "./task-queues";

/**
 * Configuration from the environment, parsed once per process. Names start with QX_ except the
 * conventional DATABASE_URL. Durations are milliseconds.
 */
const durationMs = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const controlPlaneSchema = z.object({
  temporalAddress: z.string().default("127.0.0.1:7233"),
  temporalNamespace: z.string().default("default"),
  temporalUiUrl: z.string().default("http://127.0.0.1:8233"),
  controlPlaneQueue: z.string().default(DEFAULT_CONTROL_PLANE_QUEUE),
  /** How long a host-queue activity may wait for its host's worker before the step fails. */
  hostScheduleToStartMs: durationMs(60_000),
  /** vCPUs placed per physical core (OpenStack's cpu_allocation_ratio). */
  cpuAllocationRatio: z.coerce.number().positive().default(4),
  memoryAllocationRatio: z.coerce.number().positive().default(1),
});

export type ControlPlaneConfig = z.infer<typeof controlPlaneSchema>;

export function controlPlaneConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ControlPlaneConfig {
  return controlPlaneSchema.parse({
    temporalAddress: env.QX_TEMPORAL_ADDRESS,
    temporalNamespace: env.QX_TEMPORAL_NAMESPACE,
    temporalUiUrl: env.QX_TEMPORAL_UI_URL,
    controlPlaneQueue: env.QX_CONTROL_PLANE_QUEUE,
    hostScheduleToStartMs: env.QX_HOST_SCHEDULE_TO_START_MS,
    cpuAllocationRatio: env.QX_CPU_ALLOCATION_RATIO,
    memoryAllocationRatio: env.QX_MEMORY_ALLOCATION_RATIO,
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
  /** Where console logs of guests are written. */
  consoleLogDir: z.string(),
});

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
    consoleLogDir: env.QX_CONSOLE_LOG_DIR ?? "/var/log/quantix/console",
  });
}

/** The id of the local directory pool a host announces: one per host. */
export function localPoolId(hostId: string): string {
  return `local-${hostId}`;
}
