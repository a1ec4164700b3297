/**
 * VM creation: through the whole system (API → Temporal workflow → host worker → libvirt) against
 * the same work done straight (qemu-img create + libvirt define + start), N of each, interleaved
 * in one run so both see the same machine. Prints p50/p95 per VM and the API/raw ratio.
 *
 *   QX_TEST_INSTANCE=9 npx tsx bench/create-vm.bench.ts [N]    (default N = 10)
 *
 * It starts the same real services as the tests (test/global-setup.ts) on the instance's ports.
 */
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { buildDomainXml, domainName } from "../activities/libvirt/domain-xml";
import { fileDiskElement } from "../activities/storage/local-dir";
import { runCommand } from "../common/exec";
import globalSetup from "../test/global-setup";
import globalTeardown from "../test/global-teardown";
import { startTestSystem, type TestSystem } from "../test/support/system";

const N = Number(process.argv[2] ?? 10);
const VM = { vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };
// The bench polls operations as a client would, but often, so polling adds little to the figure.
const POLL_MS = 10;

async function untilDone(system: TestSystem, operationId: string): Promise<void> {
  for (;;) {
    const op = (await system.request("GET", `/v1/operations/${operationId}`)).body;
    if (op.state === "COMPLETED") return;
    if (op.state === "FAILED" || op.state === "CANCELLED") throw new Error(`${op.type} ${op.state}: ${op.error?.message}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Times one create through the API, then deletes the VM (untimed) so the host never fills up. */
async function viaApi(system: TestSystem, i: number): Promise<number> {
  const started = performance.now();
  const res = await system.request("POST", "/v1/vms", { name: `bench-api-${i}`, ...VM });
  if (res.status !== 202) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
  await untilDone(system, res.body.operationId);
  const ms = performance.now() - started;
  await untilDone(system, (await system.request("DELETE", `/v1/vms/${res.body.vmId}`)).body.operationId);
  return ms;
}

/** Times the same work done straight, then removes it (untimed). */
async function raw(system: TestSystem, dir: string): Promise<number> {
  const hypervisor = system.hosts[0]!.runtime.hypervisor;
  const vmId = randomUUID();
  const disk = path.join(dir, `${vmId}.qcow2`);
  const started = performance.now();
  await runCommand("qemu-img", ["create", "-q", "-f", "qcow2", disk, `${VM.diskSizeGiB}G`]);
  await hypervisor.defineDomain(
    buildDomainXml({ vmId, displayName: "bench-raw", vcpus: VM.vcpus, memoryMiB: VM.memoryMiB, domainType: "kvm", bootDisk: fileDiskElement(disk), consoleLogPath: path.join(dir, `${vmId}.log`), installation: "bench" }),
  );
  await hypervisor.startDomain(domainName(vmId));
  while ((await hypervisor.domainState(domainName(vmId))) !== "running") await new Promise((r) => setTimeout(r, POLL_MS));
  const ms = performance.now() - started;
  await hypervisor.destroyDomain(domainName(vmId));
  await hypervisor.undefineDomain(domainName(vmId));
  await rm(disk);
  return ms;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  await globalSetup();
  const system = await startTestSystem();
  const rawDir = path.join(system.hosts[0]!.poolDir, "..", "raw");
  await mkdir(rawDir, { recursive: true });
  const apiMs: number[] = [];
  const rawMs: number[] = [];
  try {
    // One of each first, not measured: loads code paths and caches on both sides.
    await viaApi(system, -1);
    await raw(system, rawDir);
    for (let i = 0; i < N; i++) {
      rawMs.push(await raw(system, rawDir));
      apiMs.push(await viaApi(system, i));
    }
  } finally {
    await rm(rawDir, { recursive: true, force: true });
    await system.shutdown();
    await globalTeardown();
  }
  const row = (name: string, v: number[]) => `${name.padEnd(28)} p50 ${percentile(v, 50).toFixed(0).padStart(6)} ms   p95 ${percentile(v, 95).toFixed(0).padStart(6)} ms`;
  console.log(`\ncreate VM, N=${N} each (1 vCPU, 64 MiB, 1 GiB qcow2, KVM)`);
  console.log(row("raw qemu-img + libvirt", rawMs));
  console.log(row("API → workflow → host", apiMs));
  console.log(`ratio API/raw                p50 ${(percentile(apiMs, 50) / percentile(rawMs, 50)).toFixed(2)}x   p95 ${(percentile(apiMs, 95) / percentile(rawMs, 95)).toFixed(2)}x`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
