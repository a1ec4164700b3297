import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Domain, Hypervisor as NativeHypervisor } from "@unraid/libvirt" with { "resolution-mode": "import" };
import { runCommand } from "../../common/exec";
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
  /** virsh reads device XML from a file only. */
  const withDeviceFile = async (xml: string, use: (file: string) => Promise<unknown>) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qx-device-"));
    try {
      await writeFile(path.join(dir, "device.xml"), xml);
      await use(path.join(dir, "device.xml"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
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

    async listDomainNames() {
      const domains = await native.connectListAllDomains();
      return Promise.all(domains.map((d) => native.domainGetName(d)));
    },

    async startDomain(name) {
      await native.domainCreate(await lookup(name));
    },

    async shutdownDomain(name) {
      await native.domainShutdown(await lookup(name));
    },

    async rebootDomain(name) {
      // The binding has no reboot.
      await virsh("reboot", name);
    },

    async destroyDomain(name) {
      await native.domainDestroy(await lookup(name));
    },

    async undefineDomain(name) {
      await native.domainUndefine(await lookup(name));
    },

    async attachDevice(name, deviceXml, live) {
      // The binding has no device hot-plug.
      await withDeviceFile(deviceXml, (file) => virsh("attach-device", name, file, ...liveFlags(live)));
    },

    async detachDevice(name, deviceXml, live) {
      await withDeviceFile(deviceXml, (file) => virsh("detach-device", name, file, ...liveFlags(live)));
    },

    async blockResize(name, targetDev, sizeBytes) {
      await virsh("blockresize", name, targetDev, "--size", `${sizeBytes}B`);
    },

    async close() {
      await native.connectClose();
    },
  };
}
