import type { Hypervisor } from "../libvirt/hypervisor";
import { createDomainActivities, type DomainActivityConfig } from "../libvirt/domain-activities";
import type { PoolRegistry } from "../storage/pool-registry";
import { createVolumeActivities } from "../storage/volume-activities";

/** Everything a host worker runs on its own queue, built over that host's clients. */
export function createHostActivities(deps: { hypervisor: Hypervisor; pools: PoolRegistry; config: DomainActivityConfig }) {
  return {
    ...createDomainActivities(deps.hypervisor, deps.pools, deps.config),
    ...createVolumeActivities(deps.pools),
  };
}

export type HostActivities = ReturnType<typeof createHostActivities>;
