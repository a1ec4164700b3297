import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { domainName } from "../../activities/libvirt/domain-xml";
import { CommandError, runCommand } from "../../common/exec";
import type { TestHost, TestSystem } from "./system";

/**
 * The test guest as a user would bring it: its ISO (scripts/build-test-guest.sh, cached by content
 * hash) uploaded to the image library, and VMs made from it with POST /v1/vms like any installer
 * ISO. It needs a host with `domainType: "qemu"` (TCG): this machine's /dev/kvm boots no Linux.
 */
const ROOT = path.resolve(__dirname, "../..");

let built: Promise<string> | undefined;

/** Path of the test guest ISO, built once per test process. */
export function testGuestIso(): Promise<string> {
  built ??= runCommand("bash", [path.join(ROOT, "scripts/build-test-guest.sh")], { timeoutMs: 300_000 }).then((r) => r.stdout.trim().split("\n").pop()!);
  return built;
}

/** Uploads the test guest ISO into the host's local pool; returns the image id. */
export async function uploadTestGuestImage(system: TestSystem, host: TestHost): Promise<string> {
  const iso = await readFile(await testGuestIso());
  const checksum = { algorithm: "sha256", value: createHash("sha256").update(iso).digest("hex") };
  const created = await system.request("POST", "/v1/images", { source: "upload", name: "test-guest", kind: "iso", poolId: host.poolId, checksum });
  if (created.status !== 201) throw new Error(`image create: ${created.status} ${JSON.stringify(created.body)}`);
  const res = await fetch(`${system.api.url}/v1/images/${created.body.id}/content`, {
    method: "PUT",
    headers: { authorization: "Bearer test-token", "content-type": "application/octet-stream" },
    body: iso,
  });
  const { operationId } = (await res.json()) as { operationId: string };
  const op = await system.waitForOperation(operationId);
  if (op.state !== "COMPLETED") throw new Error(`test guest upload ${op.state}: ${JSON.stringify(op.error)}`);
  return created.body.id;
}

export const TEST_GUEST_VM = { vcpus: 1, memoryMiB: 256, diskSizeGiB: 1 };

/** Starts createVm for a VM booting the test guest ISO; returns its ids (the guest is still booting). */
export async function startTestGuest(system: TestSystem, imageId: string, name: string, poolId?: string): Promise<{ vmId: string; operationId: string }> {
  const res = await system.request("POST", "/v1/vms", { ...TEST_GUEST_VM, name, imageId, ...(poolId ? { poolId } : {}) });
  if (res.status !== 202) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return { vmId: res.body.vmId, operationId: res.body.operationId };
}

/** Creates a VM from the test guest and waits until its agent answers; returns its id. */
export async function bootTestGuest(system: TestSystem, imageId: string, name: string, poolId?: string): Promise<string> {
  const { vmId, operationId } = await startTestGuest(system, imageId, name, poolId);
  const op = await system.waitForOperation(operationId);
  if (op.state !== "COMPLETED") throw new Error(`create ${name} ${op.state}: ${JSON.stringify(op.error)}`);
  await waitForAgent(vmId);
  return vmId;
}

/** One agent command straight through virsh: the tests' own view of the guest, apart from the product's. */
export async function agentCommand<T = unknown>(vmId: string, execute: string, args?: unknown): Promise<T> {
  const command = JSON.stringify(args === undefined ? { execute } : { execute, arguments: args });
  const { stdout } = await runCommand("virsh", ["-c", "qemu:///system", "-q", "qemu-agent-command", domainName(vmId), command, "--timeout", "10"], { timeoutMs: 30_000 });
  return (JSON.parse(stdout) as { return: T }).return;
}

/** Waits until the guest's agent answers guest-ping (TCG boots take 7–14 s here, more under load). */
export async function waitForAgent(vmId: string, timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await agentCommand(vmId, "guest-ping");
      return;
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      if (Date.now() > deadline) throw new Error(`agent of ${vmId} did not answer in ${timeoutMs} ms: ${err.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Runs a command in the guest through the agent (the tests' independent observer) and returns its output. */
export async function guestShell(vmId: string, script: string): Promise<{ exitCode: number; stdout: string }> {
  const { pid } = await agentCommand<{ pid: number }>(vmId, "guest-exec", { path: "/bin/sh", arg: ["-c", script], "capture-output": true });
  for (;;) {
    const status = await agentCommand<{ exited: boolean; exitcode?: number; "out-data"?: string }>(vmId, "guest-exec-status", { pid });
    if (status.exited) return { exitCode: status.exitcode ?? -1, stdout: Buffer.from(status["out-data"] ?? "", "base64").toString() };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls GET /v1/vms/:id until `until` holds (the agent status arrives through the host's reports). */
export async function pollVm(system: TestSystem, vmId: string, until: (vm: any) => boolean, timeoutMs = 90_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const vm = (await system.request("GET", `/v1/vms/${vmId}`)).body;
    if (until(vm)) return vm;
    if (Date.now() > deadline) throw new Error(`VM ${vmId} still ${JSON.stringify(vm.guestAgent)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
