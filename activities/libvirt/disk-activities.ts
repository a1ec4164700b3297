import { Context } from "@temporalio/activity";
import { XMLBuilder, XMLParser } from "fast-xml-parser";
import { permanentFailure, transientFailure } from "../../common/errors";
import type { LunAssignments } from "../storage/backend";
import { volumeBackend, type PoolRegistry } from "../storage/pool-registry";
import { domainName } from "./domain-xml";
import type { Hypervisor } from "./hypervisor";

/**
 * Host activities that join volumes and guests: hot-plug and unplug of data disks, and growing a
 * disk a running guest holds open. Data disks go on the domain's virtio-scsi controller (target
 * sdX): unplugging a SCSI disk completes without the guest's help, unlike a virtio-blk PCI device,
 * which stays until the guest OS acknowledges the ACPI eject (and forever when it has none).
 */

export interface DiskAttachment {
  vmId: string;
  poolId: string;
  volumeId: string;
  targetDev: string;
  /** iSCSI pools: the volume's LUN. */
  lunAssignments?: LunAssignments;
}

const TARGET_DEV = /^sd[a-z]$/;
const RELEASE_POLL_MS = 200;
const RELEASE_WAIT_MS = 10_000;

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@_", isArray: (name) => name === "disk" });
const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_", suppressEmptyNode: true, processEntities: true });

type DiskNode = Record<string, unknown> & { target?: { "@_dev"?: string } };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The live XML adds attributes (index, ...) to what we attached: compare what names the image only. */
function sameSource(live: unknown, wanted: unknown): boolean {
  const a = (live ?? {}) as Record<string, unknown>;
  const b = (wanted ?? {}) as Record<string, unknown>;
  return a["@_file"] === b["@_file"] && a["@_name"] === b["@_name"] && a["@_protocol"] === b["@_protocol"];
}

function checkTargetDev(targetDev: string): void {
  if (!TARGET_DEV.test(targetDev)) throw permanentFailure("VALIDATION_FAILED", `invalid data disk target ${JSON.stringify(targetDev)}`);
}

export function createDiskActivities(hypervisor: Hypervisor, pools: PoolRegistry) {
  async function disks(vmId: string): Promise<DiskNode[]> {
    const doc = parser.parse(await hypervisor.domainXml(domainName(vmId))) as { domain?: { devices?: { disk?: DiskNode[] } } };
    return doc.domain?.devices?.disk ?? [];
  }

  const diskAt = async (vmId: string, targetDev: string) => (await disks(vmId)).find((d) => d.target?.["@_dev"] === targetDev);
  const isLive = (state: string | null) => state === "running" || state === "paused";

  return {
    /** attachVolume's step: into the definition, and into the guest when it runs. Idempotent. */
    async attachDisk(input: DiskAttachment): Promise<void> {
      checkTargetDev(input.targetDev);
      const name = domainName(input.vmId);
      const state = await hypervisor.domainState(name);
      if (state === null) throw permanentFailure("NOT_FOUND", `domain ${name} is not defined on this host`);
      const element = await volumeBackend(pools, input.poolId, input.lunAssignments).diskElement(input.volumeId);
      const present = await diskAt(input.vmId, input.targetDev);
      if (present) {
        // A retry finds its own disk; any other disk there means the control plane's map is wrong.
        if (sameSource(present.source, element.source)) return;
        throw permanentFailure("CONFLICT", `${name} already has another disk at ${input.targetDev}`);
      }
      const xml = builder.build({ disk: { ...element, target: { "@_dev": input.targetDev, "@_bus": "scsi" } } }) as string;
      try {
        await hypervisor.attachDevice(name, xml, isLive(state));
      } catch (err) {
        throw permanentFailure("HYPERVISOR_ERROR", `attach ${input.volumeId} to ${name}: ${(err as Error).message}`);
      }
    },

    /** detachVolume's step and attachDisk's undo: waits until the guest has let go. Success when already gone. */
    async detachDisk(input: { vmId: string; targetDev: string }): Promise<void> {
      checkTargetDev(input.targetDev);
      const name = domainName(input.vmId);
      const state = await hypervisor.domainState(name);
      if (state === null) return;
      const present = await diskAt(input.vmId, input.targetDev);
      if (!present) return;
      const xml = builder.build({ disk: { ...present } }) as string;
      try {
        await hypervisor.detachDevice(name, xml, isLive(state));
      } catch (err) {
        throw transientFailure("HYPERVISOR_ERROR", `detach ${input.targetDev} from ${name}: ${(err as Error).message}`);
      }
      const ctx = Context.current();
      for (const deadline = Date.now() + RELEASE_WAIT_MS; await diskAt(input.vmId, input.targetDev); ) {
        if (Date.now() > deadline) throw transientFailure("HYPERVISOR_ERROR", `${name} still holds ${input.targetDev}`);
        ctx.heartbeat({ waitingFor: input.targetDev });
        await sleep(RELEASE_POLL_MS);
      }
    },

    /**
     * resizeVolume's step. A disk a running guest holds open is grown through libvirt (qemu owns the
     * image's lock, and the guest learns the new size at once); any other through the pool. Idempotent.
     */
    async growVolume(input: {
      poolId: string;
      volumeId: string;
      sizeBytes: number;
      attachedTo?: { vmId: string; targetDev: string };
      lunAssignments?: LunAssignments;
    }): Promise<void> {
      const backend = volumeBackend(pools, input.poolId, input.lunAssignments);
      const attached = input.attachedTo;
      // A LUN's size is the array's: the guest already sees all of it, and only the array can grow it.
      if (input.lunAssignments) return backend.resizeVolume(input.volumeId, input.sizeBytes);
      if (attached && isLive(await hypervisor.domainState(domainName(attached.vmId)))) {
        const info = await backend.volumeInfo(input.volumeId);
        if (!info) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${input.volumeId} does not exist`);
        if (info.sizeBytes > input.sizeBytes) throw permanentFailure("VALIDATION_FAILED", `volume ${input.volumeId} is larger than ${input.sizeBytes} bytes`);
        if (info.sizeBytes === input.sizeBytes) return;
        try {
          await hypervisor.blockResize(domainName(attached.vmId), attached.targetDev, input.sizeBytes);
        } catch (err) {
          throw permanentFailure("HYPERVISOR_ERROR", `blockresize ${attached.targetDev}: ${(err as Error).message}`);
        }
        return;
      }
      await backend.resizeVolume(input.volumeId, input.sizeBytes);
    },
  };
}
