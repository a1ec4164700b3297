import { access, readdir } from "node:fs/promises";
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
export type SystemView = Pick<TestSystem, "prisma" | "request" | "domainState"> & { hosts: Pick<TestHost, "poolDir" | "consoleLogDir">[] };

export function diskPath(host: Pick<TestHost, "poolDir">, volumeId: string): string {
  return path.join(host.poolDir, `${volumeId}.qcow2`);
}

export async function qemuImgInfo(file: string): Promise<{ format: string; "virtual-size": number; "backing-filename"?: string }> {
  return JSON.parse((await runCommand("qemu-img", ["info", "--output=json", "-U", file])).stdout);
}

/**
 * Every file under `dir` (recursively) whose path names one of `ids`. The directory must exist: a
 * clean-slate check that looked in the wrong place (a typo, a moved root) fails instead of passing.
 */
export async function filesNaming(dir: string, ids: string[]): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((entry) => ids.some((id) => entry.includes(id))).map((entry) => path.join(dir, entry));
}

/** No host's pool directory (disks, seed ISOs, images) or console log directory holds a file of `ids`. */
export async function expectNoHostFiles(system: SystemView, ids: string[]): Promise<void> {
  for (const host of system.hosts) {
    expect(await filesNaming(host.poolDir, ids)).toEqual([]);
    expect(await filesNaming(host.consoleLogDir, ids)).toEqual([]);
  }
}

/**
 * Nothing of a VM left on any host or in placement: no libvirt domain, no disk file, seed ISO or
 * console log, no volume row, no capacity held; the VM row (if any) is FAILED on no host.
 */
export async function expectCleanSlate(system: SystemView, vmId: string, bootVolumeId: string, otherVolumeIds: string[] = []): Promise<void> {
  expect(await system.domainState(vmId)).toBeNull();
  await expectNoHostFiles(system, [vmId, bootVolumeId, ...otherVolumeIds]);
  expect(await system.prisma.volume.count({ where: { id: { in: [bootVolumeId, ...otherVolumeIds] } } })).toBe(0);
  const vm = await system.prisma.vm.findUnique({ where: { id: vmId } });
  if (vm) {
    expect({ state: vm.state, hostId: vm.hostId, cleanup: vm.cleanup }).toEqual({ state: "FAILED", hostId: null, cleanup: null });
  }
  await expectAllocationOfLiveVms(system);
}

/**
 * A host's allocation is exactly what its live VMs (running or stopped) hold: a failed VM that
 * still held capacity would show up as the difference.
 */
export async function expectAllocationOfLiveVms(system: SystemView): Promise<void> {
  const hosts = await system.request("GET", "/v1/hosts");
  for (const host of hosts.body.items) {
    const live = await system.prisma.vm.findMany({ where: { hostId: host.id, state: { in: ["RUNNING", "STOPPED"] } } });
    expect({ host: host.id, allocated: host.allocated }).toEqual({
      host: host.id,
      allocated: { vcpus: live.reduce((sum, v) => sum + v.vcpus, 0), memoryMiB: live.reduce((sum, v) => sum + v.memoryMiB, 0) },
    });
  }
}

/** The operation recorded no failed undo (omicron's assert_no_failed_undo_steps). */
export function expectNoFailedUndo(operation: { steps: { kind: string; state: string }[] }): void {
  expect(operation.steps.filter((s) => s.kind === "UNDO" && s.state !== "COMPLETED")).toEqual([]);
}

/**
 * A resource left in ERROR by a failed undo or delete: it says so through the API, names the
 * step that failed, and keeps a reference to what is left.
 */
export function expectPendingCleanup(resource: { state?: string; status?: string; cleanup: any }, failedStep: string): void {
  expect(resource.state ?? resource.status).toBe("ERROR");
  expect(resource.cleanup.failed.map((f: { step: string }) => f.step)).toContain(failedStep);
}
