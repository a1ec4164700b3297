import { access } from "node:fs/promises";
import path from "node:path";
import { runCommand } from "../../common/exec";
import type { TestHost, TestSystem } from "./system";

export async function fileExists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** What the clean-slate checks read: in-process (TestSystem) and process (ProcessSystem) systems both have it. */
export type SystemView = Pick<TestSystem, "prisma" | "request" | "domainState"> & { hosts: Pick<TestHost, "poolDir">[] };

export function diskPath(host: Pick<TestHost, "poolDir">, volumeId: string): string {
  return path.join(host.poolDir, `${volumeId}.qcow2`);
}

export async function qemuImgInfo(file: string): Promise<{ format: string; "virtual-size": number; "backing-filename"?: string }> {
  return JSON.parse((await runCommand("qemu-img", ["info", "--output=json", "-U", file])).stdout);
}

/**
 * Nothing of a VM left on any host or in placement: no libvirt domain, no disk file, no volume
 * row, no capacity held; the VM row (if any) is FAILED.
 */
export async function expectCleanSlate(system: SystemView, vmId: string, bootVolumeId: string): Promise<void> {
  expect(await system.domainState(vmId)).toBeNull();
  for (const host of system.hosts) expect(await fileExists(diskPath(host, bootVolumeId))).toBe(false);
  expect(await system.prisma.volume.count({ where: { id: bootVolumeId } })).toBe(0);
  const vm = await system.prisma.vm.findUnique({ where: { id: vmId } });
  if (vm) {
    expect(vm.state).toBe("FAILED");
    expect(vm.hostId).toBeNull();
  }
  // A host's allocation is exactly what its live VMs (running or stopped) hold: a failed VM that
  // still held capacity would show up as the difference.
  const hosts = await system.request("GET", "/v1/hosts");
  for (const host of hosts.body.items) {
    const live = await system.prisma.vm.findMany({ where: { hostId: host.id, state: { in: ["RUNNING", "STOPPED"] } } });
    expect(host.allocated).toEqual({
      vcpus: live.reduce((sum, v) => sum + v.vcpus, 0),
      memoryMiB: live.reduce((sum, v) => sum + v.memoryMiB, 0),
    });
  }
}

/** The operation recorded no failed undo (omicron's assert_no_failed_undo_steps). */
export function expectNoFailedUndo(operation: { steps: { kind: string; state: string }[] }): void {
  expect(operation.steps.filter((s) => s.kind === "UNDO" && s.state !== "COMPLETED")).toEqual([]);
}
