import type { Domain, Hypervisor as NativeHypervisor } from "@unraid/libvirt" with { "resolution-mode": "import" };
import { runCommand } from "../../common/exec";
// virsh reads device XML from a file only; a private one (0600, removed after use) serves.
import { withPrivateFile } from "../storage/private-file";
import type { DomainState, Hypervisor, NodeFacts } from "./hypervisor";
import { isDomainNotFound } from "./hypervisor";

// libvirt's virDomainState numbering.
const DOMAIN_STATES: Record<number, DomainState> = {
  1: "running",
  2: "running", // blocked on I/O: still running
  3: "paused",
  4: "shutdown",
  5: "shutoff",
  6: "crashed",
  7: "suspended",
};

const VIRSH_TIMEOUT_MS = 60_000;

/**
 * A Hypervisor over one libvirt connection (qemu:///system, qemu+tcp://..., or test:///default).
 * The binding is ESM-only, so it is loaded with import() at connect time.
 */
export async function connectLibvirt(uri: string): Promise<Hypervisor> {
  const { Hypervisor: NativeHypervisorClass } = await import("@unraid/libvirt");
  const native: NativeHypervisor = new NativeHypervisorClass({ uri });
  await native.connectOpen();

  const lookup = (name: string): Promise<Domain> => native.domainLookupByName(name);
  const virsh = (...args: string[]) => runCommand("virsh", ["-c", uri, "-q", ...args], { timeoutMs: VIRSH_TIMEOUT_MS });
  const liveFlags = (live: boolean) => (live ? ["--live", "--config"] : ["--config"]);

  return {
    uri,

    async nodeFacts(): Promise<NodeFacts> {
      const info = await native.nodeGetInfo();
      return { hostname: await native.connectGetHostname(), cpus: info.cpus, memoryMiB: Math.floor(info.memory / 1024) };
    },

    async defineDomain(xml) {
      await native.domainDefineXML(xml);
    },

    async runningDomains() {
      const names = await Promise.all(
        (await native.connectListDomains()).map((id) => native.domainLookupByID(id).then((d) => native.domainGetName(d), () => null)),
      );
      // A domain that stopped between the listing and its lookup is not running.
      return names.filter((n): n is string => n !== null);
    },

    async domainState(name) {
      try {
        const info = await native.domainGetInfo(await lookup(name));
        return DOMAIN_STATES[info.state as number] ?? "unknown";
      } catch (err) {
        if (isDomainNotFound(err)) return null;
        throw err;
      }
    },

    async domainXml(name) {
      return native.domainGetXMLDesc(await lookup(name));
    },

    async startDomain(name) {
      await native.domainCreate(await lookup(name));
    },

    // The binding has no shutdown/reboot flags. "agent,acpi": libvirt asks the guest agent when
    // one is connected, and sends the ACPI event otherwise.
    async shutdownDomain(name) {
      await virsh("shutdown", name, "--mode", "agent,acpi");
    },

    async rebootDomain(name) {
      await virsh("reboot", name, "--mode", "agent,acpi");
    },

    async destroyDomain(name) {
      await native.domainDestroy(await lookup(name));
    },

    async undefineDomain(name) {
      await native.domainUndefine(await lookup(name));
    },

    async attachDevice(name, deviceXml, live) {
      // The binding has no device hot-plug.
      await withPrivateFile(deviceXml, (file) => virsh("attach-device", name, file, ...liveFlags(live)));
    },

    async detachDevice(name, deviceXml, live) {
      await withPrivateFile(deviceXml, (file) => virsh("detach-device", name, file, ...liveFlags(live)));
    },

    async blockResize(name, targetDev, sizeBytes) {
      await virsh("blockresize", name, targetDev, "--size", `${sizeBytes}B`);
    },

    async close() {
      await native.connectClose();
    },
  };
}
