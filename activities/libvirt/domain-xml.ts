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
  /** Data disks on the virtio-scsi controller, each at its target (sda, sdb...). */
  dataDisks?: { element: DiskElement; targetDev: string }[];
  consoleLogPath: string;
  /** Absolute paths of ISO files attached read-only as IDE CD-ROMs (hdc, hdd), in order. */
  cdroms?: string[];
  /** Boot from the first CD-ROM, then the disk (an installer ISO); otherwise the disk only. */
  bootFromCdrom?: boolean;
  /** The Quantix installation (its control-plane queue) that manages the domain; see QUANTIX_METADATA_NS. */
  installation: string;
  /** NICs on OVN's integration bridge, in order. */
  nics?: NicSpec[];
}

/** A VM NIC: an OVN logical switch port, plugged into the integration bridge by libvirt. */
export interface NicSpec {
  /** The logical switch port's name: a UUID, as libvirt's interfaceid must be. */
  portId: string;
  mac: string;
  bridge: string;
}

/** IDE targets left for CD-ROMs on the pc machine's two channels (the disks are virtio and SCSI). */
const CDROM_TARGETS = ["hdc", "hdd"];
const DATA_DISK_TARGET = /^sd[a-z]$/;

function cdromElements(paths: string[]): DiskElement[] {
  if (paths.length > CDROM_TARGETS.length) throw new Error(`at most ${CDROM_TARGETS.length} CD-ROMs, got ${paths.length}`);
  return paths.map((file, i) => ({
    "@_type": "file",
    "@_device": "cdrom",
    driver: { "@_name": "qemu", "@_type": "raw" },
    source: { "@_file": file },
    target: { "@_dev": CDROM_TARGETS[i], "@_bus": "ide" },
    readonly: "",
  }));
}

/** The virtio-serial port qemu-ga listens on (activities/guest-agent/). */
export const GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0";

/**
 * Domains carry the installation that manages them in their metadata, so a host worker only
 * watches its own guests on a libvirtd that others share (several installations, or test runs).
 * It stays valid when a domain migrates between hosts of the same installation.
 */
export const QUANTIX_METADATA_NS = "https://quantix.dev/xmlns/libvirt-domain/1";

/**
 * The <interface> of a NIC: libvirt adds a tap to the bridge with external_ids:iface-id = the port
 * id (openvswitch virtualport), which is what ovn-controller binds to the logical switch port.
 */
export function interfaceElement(nic: NicSpec) {
  return {
    "@_type": "bridge",
    mac: { "@_address": nic.mac },
    source: { "@_bridge": nic.bridge },
    virtualport: { "@_type": "openvswitch", parameters: { "@_interfaceid": nic.portId } },
    model: { "@_type": "virtio" },
  };
}

export function buildInterfaceXml(nic: NicSpec): string {
  return builder.build({ interface: interfaceElement(nic) });
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
 * The libvirt domain for a VM: virtio boot disk, a virtio-scsi controller for data disks, serial console to a file (kept across
 * migrations with append), VNC on loopback only, ACPI so a graceful shutdown can work, and the guest agent's
 * virtio-serial channel.
 */
export function buildDomainXml(spec: DomainSpec): string {
  const badTarget = (spec.dataDisks ?? []).find((d) => !DATA_DISK_TARGET.test(d.targetDev));
  if (badTarget) throw new Error(`invalid data disk target ${JSON.stringify(badTarget.targetDev)}`);
  return builder.build({
    domain: {
      "@_type": spec.domainType,
      name: domainName(spec.vmId),
      uuid: spec.vmId,
      title: spec.displayName,
      metadata: { "quantix:domain": { "@_xmlns:quantix": QUANTIX_METADATA_NS, "@_installation": spec.installation } },
      memory: { "@_unit": "MiB", "#text": spec.memoryMiB },
      vcpu: spec.vcpus,
      os: {
        type: { "@_arch": "x86_64", "@_machine": "pc", "#text": "hvm" },
        boot: spec.bootFromCdrom ? [{ "@_dev": "cdrom" }, { "@_dev": "hd" }] : { "@_dev": "hd" },
      },
      features: { acpi: "" },
      on_poweroff: "destroy",
      on_reboot: "restart",
      on_crash: "destroy",
      devices: {
        disk: [
          { ...spec.bootDisk, target: { "@_dev": "vda", "@_bus": "virtio" } },
          ...(spec.dataDisks ?? []).map((d) => ({ ...d.element, target: { "@_dev": d.targetDev, "@_bus": "scsi" } })),
          ...cdromElements(spec.cdroms ?? []),
        ],
        // Data disks sit here, from the start or hot-plugged (activities/libvirt/disk-activities.ts): a controller cannot be.
        controller: { "@_type": "scsi", "@_model": "virtio-scsi", "@_index": "0" },
        serial: { "@_type": "file", source: { "@_path": spec.consoleLogPath, "@_append": "on" }, target: { "@_port": "0" } },
        console: { "@_type": "file", source: { "@_path": spec.consoleLogPath, "@_append": "on" }, target: { "@_type": "serial", "@_port": "0" } },
        // Every domain gets the agent's channel, so any VM can use the guest agent once the guest runs one.
        channel: { "@_type": "unix", target: { "@_type": "virtio", "@_name": GUEST_AGENT_CHANNEL } },
        ...(spec.nics?.length ? { interface: spec.nics.map(interfaceElement) } : {}),
        graphics: { "@_type": "vnc", "@_autoport": "yes", "@_listen": "127.0.0.1", listen: { "@_type": "address", "@_address": "127.0.0.1" } },
      },
    },
  });
}
