import { readdir } from "node:fs/promises";
import { XMLParser } from "fast-xml-parser";
import { runCommand } from "../../common/exec";
import { domainName } from "../../activities/libvirt/domain-xml";
import type { TestSystem } from "./system";

/** Helpers for storage tests: run an operation to its end, and look at the real system. */

export async function completed(system: TestSystem, res: { status: number; body: any }): Promise<any> {
  expect(res.status).toBe(202);
  const op = await system.waitForOperation(res.body.operationId);
  expect({ type: op.type, state: op.state, error: op.error }).toEqual({ type: op.type, state: "COMPLETED", error: null });
  return op;
}

/** Volume files (`<id>.qcow2`) and partial copies (hidden) in a pool directory. */
export async function poolFiles(dir: string): Promise<string[]> {
  // A missing directory is an error, never "empty": a check looking in the wrong place must fail.
  const names = await readdir(dir);
  return names.filter((n) => n.endsWith(".qcow2") || n.endsWith(".part")).sort();
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@_", isArray: (name) => name === "disk" });

/** The domain's disks as libvirt has them (`live` or the persistent definition): target → source file. */
export async function domainDisks(vmId: string, which: "live" | "config" = "live"): Promise<Record<string, string>> {
  const args = ["-c", "qemu:///system", "dumpxml", ...(which === "config" ? ["--inactive"] : []), domainName(vmId)];
  const doc = parser.parse((await runCommand("virsh", args)).stdout) as { domain: { devices: { disk?: any[] } } };
  const disks = doc.domain.devices.disk ?? [];
  return Object.fromEntries(disks.filter((d) => d["@_device"] === "disk").map((d) => [d.target["@_dev"], d.source?.["@_file"] ?? d.source?.["@_name"]]));
}

export async function qemuImg(...args: string[]): Promise<any> {
  return JSON.parse((await runCommand("qemu-img", [...args, "--output=json"])).stdout);
}
