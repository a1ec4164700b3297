import { Context } from "@temporalio/activity";
import { rm } from "node:fs/promises";
import path from "node:path";
import { permanentFailure, transientFailure } from "../../common/errors";
import type { ImageStore } from "../images/pool-images";
import type { LunAssignments } from "../storage/backend";
import { volumeBackend, type PoolRegistry } from "../storage/pool-registry";
import { buildDomainXml, domainName } from "./domain-xml";
import { isDomainNotFound, type DomainState, type Hypervisor } from "./hypervisor";

export interface DomainActivityConfig {
  domainType: "kvm" | "qemu";
  consoleLogDir: string;
  /** Recorded in each domain's metadata (domain-xml.ts QUANTIX_METADATA_NS). */
  installation: string;
  /** OVN's integration bridge, which VM NICs are plugged into. */
  integrationBridge: string;
}

export interface DefineDomainInput {
  vmId: string;
  displayName: string;
  vcpus: number;
  memoryMiB: number;
  poolId: string;
  bootVolumeId: string;
  /** Volumes attached as data disks on the virtio-scsi controller, by target device (sda...). */
  dataDisks?: { poolId: string; volumeId: string; targetDev: string; lunAssignments?: LunAssignments }[];
  /** ISO files (an installer, a cloud-init seed) by pool and path relative to it, attached as CD-ROMs. */
  cdroms?: { poolId: string; path: string }[];
  /** Boot from the first CD-ROM, then the disk. */
  bootFromCdrom?: boolean;
  /** NICs: OVN logical switch ports (their ids are libvirt's interfaceids), in order. */
  nics?: { portId: string; mac: string }[];
}

const POLL_INTERVAL_MS = 250;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Host activities on libvirt domains. Each is idempotent: it checks the domain's state first. */
export function createDomainActivities(hypervisor: Hypervisor, pools: PoolRegistry, config: DomainActivityConfig, images: ImageStore) {
  const stateOf = (vmId: string) => hypervisor.domainState(domainName(vmId));

  /** Polls until the domain reaches one of `wanted`, heartbeating; cancellation stops the wait. */
  async function waitForState(vmId: string, wanted: (DomainState | null)[]): Promise<DomainState | null> {
    const ctx = Context.current();
    for (;;) {
      const state = await stateOf(vmId);
      if (wanted.includes(state)) return state;
      ctx.heartbeat({ state });
      await Promise.race([sleep(POLL_INTERVAL_MS), ctx.cancelled]);
    }
  }

  return {
    async defineDomain(input: DefineDomainInput): Promise<void> {
      const xml = buildDomainXml({
        vmId: input.vmId,
        displayName: input.displayName,
        vcpus: input.vcpus,
        memoryMiB: input.memoryMiB,
        domainType: config.domainType,
        bootDisk: await pools.get(input.poolId).diskElement(input.bootVolumeId),
        dataDisks: await Promise.all(
          (input.dataDisks ?? []).map(async (d) => ({
            element: await volumeBackend(pools, d.poolId, d.lunAssignments).diskElement(d.volumeId),
            targetDev: d.targetDev,
          })),
        ),
        consoleLogPath: path.join(config.consoleLogDir, `${input.vmId}.log`),
        cdroms: await Promise.all((input.cdroms ?? []).map((cdrom) => images.resolve(cdrom.poolId, cdrom.path))),
        bootFromCdrom: input.bootFromCdrom ?? false,
        installation: config.installation,
        nics: (input.nics ?? []).map((nic) => ({ ...nic, bridge: config.integrationBridge })),
      });
      // Redefining with the same name and UUID replaces the definition: a retry is harmless.
      try {
        await hypervisor.defineDomain(xml);
      } catch (err) {
        throw permanentFailure("HYPERVISOR_ERROR", `define ${domainName(input.vmId)}: ${(err as Error).message}`);
      }
    },

    /**
     * Undo of defineDomain, and the delete's last host step: stops the domain first if needed. The
     * console log the domain wrote goes with it (as Nova removes an instance's console.log).
     */
    async undefineDomain(vmId: string): Promise<void> {
      const name = domainName(vmId);
      const state = await hypervisor.domainState(name);
      if (state !== null) {
        if (state !== "shutoff") await ignoreNotFound(() => hypervisor.destroyDomain(name));
        await ignoreNotFound(() => hypervisor.undefineDomain(name));
      }
      await rm(path.join(config.consoleLogDir, `${vmId}.log`), { force: true });
    },

    async startDomain(vmId: string): Promise<void> {
      const state = await stateOf(vmId);
      if (state === null) throw permanentFailure("NOT_FOUND", `domain ${domainName(vmId)} is not defined on this host`);
      if (state === "running") return;
      try {
        await hypervisor.startDomain(domainName(vmId));
      } catch (err) {
        if ((await stateOf(vmId)) === "running") return;
        throw permanentFailure("DOMAIN_START_FAILED", `start ${domainName(vmId)}: ${(err as Error).message}`);
      }
    },

    /** Waits until the domain runs; a domain that stops or crashes instead fails the step. */
    async waitForDomainRunning(vmId: string): Promise<void> {
      const state = await waitForState(vmId, ["running", "shutoff", "crashed", null]);
      if (state !== "running") throw permanentFailure("DOMAIN_NOT_RUNNING", `domain ${domainName(vmId)} is ${state ?? "gone"}, not running`);
    },

    /** Pulls the plug (undo of startDomain, force-stop). Success when already off or gone. */
    async forceStopDomain(vmId: string): Promise<void> {
      const state = await stateOf(vmId);
      if (state === null || state === "shutoff") return;
      await ignoreNotFound(() => hypervisor.destroyDomain(domainName(vmId)));
    },

    /**
     * Graceful stop: asks the guest (ACPI) and waits until it is off. The activity's
     * start-to-close timeout bounds the wait; a guest that ignores ACPI fails the step and stays on.
     */
    async shutdownDomain(vmId: string): Promise<void> {
      const state = await stateOf(vmId);
      if (state === null) throw permanentFailure("NOT_FOUND", `domain ${domainName(vmId)} is not defined on this host`);
      if (state === "shutoff") return;
      await hypervisor.shutdownDomain(domainName(vmId));
      await waitForState(vmId, ["shutoff", null]);
    },

    async rebootDomain(vmId: string): Promise<void> {
      const state = await stateOf(vmId);
      if (state !== "running") throw permanentFailure("DOMAIN_NOT_RUNNING", `domain ${domainName(vmId)} is ${state ?? "gone"}, not running`);
      try {
        await hypervisor.rebootDomain(domainName(vmId));
      } catch (err) {
        throw transientFailure("HYPERVISOR_ERROR", `reboot ${domainName(vmId)}: ${(err as Error).message}`);
      }
    },

    async domainState(vmId: string): Promise<DomainState | null> {
      return stateOf(vmId);
    },
  };
}

async function ignoreNotFound(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (!isDomainNotFound(err) && !/domain is not running/i.test((err as Error).message)) throw err;
  }
}
