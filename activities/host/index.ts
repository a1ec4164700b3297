import type { Hypervisor } from "../libvirt/hypervisor";
import type { GuestAgent } from "../guest-agent/agent-client";
import { createGuestAgentActivities } from "../guest-agent";
import type { ImageStore, PoolImageActivities } from "../images/pool-images";
import { createDomainActivities, type DomainActivityConfig } from "../libvirt/domain-activities";
import { createDiskActivities } from "../libvirt/disk-activities";
import { createNicActivities } from "../libvirt/nic-activities";
import type { PoolRegistry } from "../storage/pool-registry";
import { createPoolActivities } from "../storage/pool-activities";
import { createVolumeActivities } from "../storage/volume-activities";

/** Everything a host worker runs on its own queue, built over that host's clients. */
export function createHostActivities(deps: {
  hypervisor: Hypervisor;
  agent: GuestAgent;
  /** This host's agent package library (QX_AGENT_PACKAGE_DIR). */
  agentPackageDir: string;
  pools: PoolRegistry;
  config: DomainActivityConfig;
  images: { activities: PoolImageActivities; store: ImageStore };
}) {
  return {
    ...createDomainActivities(deps.hypervisor, deps.pools, deps.config, deps.images.store),
    ...deps.images.activities,
    ...createDiskActivities(deps.hypervisor, deps.pools),
    ...createNicActivities(deps.hypervisor, deps.config),
    ...createVolumeActivities(deps.pools),
    ...createPoolActivities(deps.pools),
    ...createGuestAgentActivities(deps.agent, { agentPackageDir: deps.agentPackageDir }),
  };
}

export type HostActivities = ReturnType<typeof createHostActivities>;
