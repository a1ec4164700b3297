import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { XMLBuilder } from "fast-xml-parser";
import { CommandError, runCommand } from "../../common/exec";
import type { DiskElement } from "../../activities/storage/backend";

/**
 * Tiny KVM guests for storage tests: 64 MiB, no OS (the firmware runs, which is all a disk attach
 * needs), one virtio disk from a backend's diskElement().
 */

const URI = "qemu:///system";
const LOG_DIR = "/var/log/libvirt/qemu";
const virsh = (...args: string[]) => runCommand("virsh", ["-c", URI, ...args], { timeoutMs: 60_000 });
const xml = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_", format: true });

export function domainXml(name: string, disk: DiskElement): string {
  return xml.build({
    domain: {
      "@_type": "kvm",
      name,
      memory: { "@_unit": "MiB", "#text": 64 },
      vcpu: 1,
      os: { type: { "@_arch": "x86_64", "@_machine": "pc", "#text": "hvm" } },
      devices: { disk: { ...disk, target: { "@_dev": "vda", "@_bus": "virtio" } }, memballoon: { "@_model": "none" } },
    },
  }) as string;
}

/** Defines and starts the guest. */
export async function startGuest(name: string, disk: DiskElement): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qx-guest-"));
  try {
    await writeFile(path.join(dir, "domain.xml"), domainXml(name, disk));
    await virsh("define", path.join(dir, "domain.xml"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await virsh("start", name);
}

/** `virsh domblklist` rows as target → source. */
export async function blockDevices(name: string): Promise<Record<string, string>> {
  const { stdout } = await virsh("domblklist", name);
  const rows = stdout.split("\n").slice(2).map((l) => l.trim().split(/\s+/)).filter((r) => r.length === 2);
  return Object.fromEntries(rows.map(([target, source]) => [target, source])) as Record<string, string>;
}

/**
 * Destroys and undefines every domain whose name starts with `prefix` (absent ones are fine), and
 * removes their logs, which libvirt keeps after the domain is gone.
 */
export async function removeGuests(prefix: string): Promise<void> {
  const { stdout } = await virsh("list", "--all", "--name");
  for (const name of stdout.split("\n").map((l) => l.trim()).filter((n) => n.startsWith(prefix))) {
    await virsh("destroy", name).catch((err: unknown) => {
      if (!(err instanceof CommandError && /not running/.test(err.stderr))) throw err;
    });
    await virsh("undefine", name);
  }
  const logs = await readdir(LOG_DIR).catch(() => []);
  for (const log of logs.filter((f) => f.startsWith(prefix) && f.endsWith(".log"))) await rm(path.join(LOG_DIR, log), { force: true });
}
