import { XMLBuilder } from "fast-xml-parser";
import type { DiskElement } from "../storage/backend";

export interface DomainSpec {
  vmId: string;
  /** The user's name for the VM; free text, escaped by the builder, kept as the libvirt title. */
  displayName: string;
  vcpus: number;
  memoryMiB: number;
  domainType: "kvm" | "qemu";
  bootDisk: DiskElement;
  consoleLogPath: string;
}

/** libvirt domain names are ours, derived from the VM id: unique, and free of user text. */
export function domainName(vmId: string): string {
  return `qx-${vmId}`;
}

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  suppressEmptyNode: true,
  format: true,
  // Escapes &, <, >, ' and " in text and attributes: user text can never become markup.
  processEntities: true,
});

/**
 * The libvirt domain for a VM: virtio boot disk, serial console to a file (kept across
 * migrations with append), VNC on loopback only, ACPI so a graceful shutdown can work.
 */
export function buildDomainXml(spec: DomainSpec): string {
  return builder.build({
    domain: {
      "@_type": spec.domainType,
      name: domainName(spec.vmId),
      uuid: spec.vmId,
      title: spec.displayName,
      memory: { "@_unit": "MiB", "#text": spec.memoryMiB },
      vcpu: spec.vcpus,
      os: { type: { "@_arch": "x86_64", "@_machine": "pc", "#text": "hvm" }, boot: { "@_dev": "hd" } },
      features: { acpi: "" },
      on_poweroff: "destroy",
      on_reboot: "restart",
      on_crash: "destroy",
      devices: {
        disk: { ...spec.bootDisk, target: { "@_dev": "vda", "@_bus": "virtio" } },
        serial: { "@_type": "file", source: { "@_path": spec.consoleLogPath, "@_append": "on" }, target: { "@_port": "0" } },
        console: { "@_type": "file", source: { "@_path": spec.consoleLogPath, "@_append": "on" }, target: { "@_type": "serial", "@_port": "0" } },
        graphics: { "@_type": "vnc", "@_autoport": "yes", "@_listen": "127.0.0.1", listen: { "@_type": "address", "@_address": "127.0.0.1" } },
      },
    },
  });
}
