import { Context } from "@temporalio/activity";
import { XMLParser } from "fast-xml-parser";
import { permanentFailure, transientFailure } from "../../common/errors";
import { buildInterfaceXml, domainName } from "./domain-xml";
import type { Hypervisor } from "./hypervisor";

/**
 * Host activities that plug VM NICs (OVN logical switch ports) into a guest and out of it. A NIC is
 * found in the domain by its MAC. Hot-plug needs nothing of the guest; a virtio-net PCI device is
 * unplugged only when the guest OS acknowledges the ACPI eject, so unplugging a running guest's NIC
 * waits for that (heartbeating), and a guest with no OS never lets go: stop it first.
 */
export interface NicPlug {
  vmId: string;
  portId: string;
  mac: string;
}

const RELEASE_POLL_MS = 250;
const RELEASE_WAIT_MS = 30_000;

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@_", isArray: (name) => name === "interface" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createNicActivities(hypervisor: Hypervisor, config: { integrationBridge: string }) {
  async function hasNic(vmId: string, mac: string): Promise<boolean> {
    const doc = parser.parse(await hypervisor.domainXml(domainName(vmId))) as { domain?: { devices?: { interface?: { mac?: { "@_address"?: string } }[] } } };
    return (doc.domain?.devices?.interface ?? []).some((i) => i.mac?.["@_address"]?.toLowerCase() === mac.toLowerCase());
  }
  const isLive = (state: string | null) => state === "running" || state === "paused";
  const xmlOf = (nic: NicPlug) => buildInterfaceXml({ portId: nic.portId, mac: nic.mac, bridge: config.integrationBridge });

  return {
    /** attachNic's step: into the definition, and into the guest when it runs. Idempotent. */
    async plugNic(nic: NicPlug): Promise<void> {
      const name = domainName(nic.vmId);
      const state = await hypervisor.domainState(name);
      if (state === null) throw permanentFailure("NOT_FOUND", `domain ${name} is not defined on this host`);
      if (await hasNic(nic.vmId, nic.mac)) return;
      try {
        await hypervisor.attachDevice(name, xmlOf(nic), isLive(state));
      } catch (err) {
        throw permanentFailure("HYPERVISOR_ERROR", `plug NIC ${nic.portId} into ${name}: ${(err as Error).message}`);
      }
    },

    /** detachNic's step and plugNic's undo: waits until the guest has let go. Success when already gone. */
    async unplugNic(nic: NicPlug): Promise<void> {
      const name = domainName(nic.vmId);
      const state = await hypervisor.domainState(name);
      if (state === null || !(await hasNic(nic.vmId, nic.mac))) return;
      try {
        await hypervisor.detachDevice(name, xmlOf(nic), isLive(state));
      } catch (err) {
        throw transientFailure("HYPERVISOR_ERROR", `unplug NIC ${nic.portId} from ${name}: ${(err as Error).message}`);
      }
      const ctx = Context.current();
      for (const deadline = Date.now() + RELEASE_WAIT_MS; await hasNic(nic.vmId, nic.mac); ) {
        if (Date.now() > deadline) throw transientFailure("HYPERVISOR_ERROR", `the guest of ${name} has not released NIC ${nic.portId} (a guest without an OS never does: stop it first)`);
        ctx.heartbeat({ waitingFor: nic.portId });
        await sleep(RELEASE_POLL_MS);
      }
    },
  };
}
