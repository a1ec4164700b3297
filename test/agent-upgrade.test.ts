import { readFileSync } from "node:fs";
import path from "node:path";
import { buildAgentPackage } from "../activities/guest-agent/agent-package";
import { expectNoFailedUndo } from "./support/assertions";
import { expectEachStepFailsCleanly } from "./support/each-step-fails";
import type { StepActivity } from "./support/step-failures";
import { startTestSystem, type TestHost, type TestSystem } from "./support/system";
import { agentCommand, bootTestGuest, guestShell, pollVm, uploadTestGuestImage } from "./support/test-guest";

/**
 * Agent upgrades on test guests with real qemu-ga: packages built in our format into each host's
 * library, pushed through guest-file-write, verified and installed inside the guest, rolled back
 * by the guest's own watchdog when the new agent never starts. Three guests, booted in parallel
 * and shared by every test (two on host a, one on host b, whose library is broken on purpose).
 */
const AGENT_START_MS = 15_000;
// Three TCG guests on a shared 2-core machine: an upgrade takes seconds when quiet, a minute or more under load.
jest.setTimeout(600_000);
let system: TestSystem;
let hostA: TestHost;
let hostB: TestHost;
const vms = {} as Record<"a1" | "a2" | "b1", string>;

const LAUNCHER = readFileSync(path.join(__dirname, "../scripts/test-guest/agent"));
const QEMU_GA = readFileSync("/usr/sbin/qemu-ga");
const THIN_LAUNCHER = '#!/bin/sh\nexec /var/lib/quantix-agent/versions/1.0.0/bin/qemu-ga -m virtio-serial -p "$1" -t /run\n';
const INSTALL = 'set -e; cp -R files/. "$1"/; chmod 0755 "$1/agent" "$1/bin/qemu-ga"\n';

/** A good package: this version's launcher and qemu-ga, installed by install.sh. */
function goodFiles() {
  return { "install.sh": { content: INSTALL }, "files/agent": { content: LAUNCHER, mode: 0o755 }, "files/bin/qemu-ga": { content: QEMU_GA, mode: 0o755 } };
}

async function publish(host: TestHost, version: string, files: Record<string, { content: Buffer | string; mode?: number }> = goodFiles(), checksums: Record<string, string> = {}) {
  await buildAgentPackage(host.runtime.config.agentPackageDir!, version, files, checksums);
}

beforeAll(async () => {
  // Status changes after an upgrade arrive through libvirt's agent events; the periodic sweep is a backstop.
  system = await startTestSystem({ domainType: "qemu", hostCount: 2, agentStatusIntervalMs: 15_000, agentStartTimeoutMs: AGENT_START_MS });
  [hostA, hostB] = [system.hosts[0]!, system.hosts[1]!];
  for (const host of [hostA, hostB]) {
    await publish(host, "1.0.0");
    await publish(host, "1.1.0");
  }
  await publish(hostA, "2.0.0");
  // Host b's 2.0.0 says one file is something it is not: a corrupt copy of the package.
  await publish(hostB, "2.0.0", goodFiles(), { "files/bin/qemu-ga": "0".repeat(64) });
  // A package whose qemu-ga was damaged after its manifest was made.
  await publish(hostA, "1.2.0", { ...goodFiles(), "files/bin/qemu-ga": { content: QEMU_GA.subarray(0, 4096), mode: 0o755 } }, { "files/bin/qemu-ga": sha256(QEMU_GA) });
  // A thin package (its launcher runs the guest's first qemu-ga) for the step-failure sweep: the sweep
  // is about the workflow's unwinding, and pushing a 1 MB binary seven times would only cost time.
  await publish(hostA, "1.4.0", { "install.sh": { content: 'cp files/agent "$1/agent"; chmod 0755 "$1/agent"\n' }, "files/agent": { content: THIN_LAUNCHER, mode: 0o755 } });
  // A package whose installer leaves an agent that never starts.
  await publish(hostA, "1.3.0", { ...goodFiles(), "install.sh": { content: `${INSTALL}printf '#!/bin/sh\\necho broken agent >&2\\nexit 1\\n' > "$1/agent"\n` } });
  const [imageA, imageB] = await Promise.all([uploadTestGuestImage(system, hostA), uploadTestGuestImage(system, hostB)]);
  [vms.a1, vms.a2, vms.b1] = await Promise.all([
    bootTestGuest(system, imageA, "fleet-1"),
    bootTestGuest(system, imageA, "fleet-3"),
    bootTestGuest(system, imageB, "fleet-2"),
  ]);
}, 600_000);

afterAll(async () => {
  await system?.shutdown();
});

function sha256(data: Buffer): string {
  return require("node:crypto").createHash("sha256").update(data).digest("hex");
}

async function upgrade(vmId: string, body: Record<string, unknown>): Promise<any> {
  const res = await system.request("POST", `/v1/vms/${vmId}/agent/upgrade`, body);
  expect(res.status).toBe(202);
  return system.waitForOperation(res.body.operationId, undefined, 500_000);
}

/** The guest's own account of its agent: running version (supervisor), installed versions, staging, watchdogs. */
async function guestAgentState(vmId: string) {
  const { stdout } = await guestShell(
    vmId,
    'A=/var/lib/quantix-agent; echo "running=$(cat /run/quantix-agent/running)"; echo "current=$(readlink $A/current)"; echo "versions=$(ls $A/versions | tr "\\n" " ")"; echo "staging=$(ls $A/staging 2>/dev/null | tr "\\n" " ")"; echo "watchdogs=$(ps -o args | grep -c "[a]gent-upgrade.sh watchdog")"',
  );
  return Object.fromEntries(stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).trim()]));
}

/** Nothing of an upgrade left: `version` runs and answers, only it (and `kept`) installed, no staging, no watchdog. */
async function expectAgentAt(vmId: string, version: string, kept: string[] = []) {
  await agentCommand(vmId, "guest-ping");
  expect(await guestAgentState(vmId)).toEqual({
    running: version,
    current: `versions/${version}`,
    versions: [...new Set([version, ...kept])].sort().join(" "),
    staging: "",
    watchdogs: "0",
  });
}

describe("guest agent upgrades on real qemu-ga", () => {
  test("an upgrade installs the new version, restarts the agent and reports it; the old one is kept aside", async () => {
    await expectAgentAt(vms.a1, "1.0.0");
    const op = await upgrade(vms.a1, { version: "1.1.0" });
    expect(op).toMatchObject({ state: "COMPLETED", type: "upgrade-agent", error: null });
    expect(op.steps.map((s: { name: string }) => s.name)).toEqual(["validate", "inspect", "push", "verify", "install", "wait-agent", "commit"]);
    await expectAgentAt(vms.a1, "1.1.0", ["1.0.0"]);
    const vm = await pollVm(system, vms.a1, (v) => v.guestAgent?.version?.package === "1.1.0");
    expect(vm.guestAgent).toMatchObject({ connected: true, version: { qemuGa: "7.2.22", package: "1.1.0" } });
  });

  test("a package whose checksum does not match is refused inside the guest; the old agent answers", async () => {
    const op = await upgrade(vms.a1, { version: "1.2.0" });
    expect(op).toMatchObject({ state: "FAILED", error: { code: "CHECKSUM_MISMATCH" } });
    expect(op.steps.find((s: { state: string }) => s.state === "FAILED")).toMatchObject({ name: "verify" });
    expectNoFailedUndo(op);
    await expectAgentAt(vms.a1, "1.1.0", ["1.0.0"]);
  });

  test("an installer that leaves an agent that never starts: the guest's watchdog rolls back, the old agent answers", async () => {
    const op = await upgrade(vms.a1, { version: "1.3.0" });
    expect(op).toMatchObject({ state: "FAILED", error: { code: "AGENT_NOT_CONNECTED" } });
    expect(op.steps.filter((s: { kind: string }) => s.kind === "UNDO").map((s: { name: string }) => s.name)).toEqual(["install", "push"]);
    expectNoFailedUndo(op);
    await expectAgentAt(vms.a1, "1.1.0", ["1.0.0"]);
    const console = readFileSync(path.join(hostA.runtime.config.consoleLogDir, `${vms.a1}.log`), "utf8");
    expect(console).toMatch(/quantix-agent: rolled back to 1\.1\.0 \(not committed within \d+ s\)/);
  });

  test("a downgrade is refused unless asked for; the same version changes nothing", async () => {
    const refused = await upgrade(vms.a1, { version: "1.0.0" });
    expect(refused).toMatchObject({ state: "FAILED", error: { code: "AGENT_DOWNGRADE_REFUSED" } });
    const same = await upgrade(vms.a1, { version: "1.1.0" });
    expect(same).toMatchObject({ state: "COMPLETED" });
    expect(same.steps.map((s: { name: string }) => s.name)).toEqual(["validate", "inspect"]);
    const down = await upgrade(vms.a1, { version: "1.0.0", allowDowngrade: true });
    expect(down).toMatchObject({ state: "COMPLETED" });
    await expectAgentAt(vms.a1, "1.0.0", ["1.1.0"]);
  });

  test("each step of upgradeAgent fails in turn: the previous agent is back and nothing of the upgrade is left", async () => {
    const activityOf: Record<string, Omit<StepActivity, "step">> = {
      validate: { activity: "loadVm", side: "database" },
      inspect: { activity: "inspectAgentUpgrade", side: "host" },
      push: { activity: "pushAgentPackage", side: "host" },
      verify: { activity: "verifyAgentPackage", side: "host" },
      install: { activity: "installAgentPackage", side: "host" },
      "wait-agent": { activity: "waitForAgentVersion", side: "host" },
      commit: { activity: "commitAgentUpgrade", side: "host" },
    };
    // The steps come from a real run (a1 goes 1.0.0 → 1.1.0), each mapped to the activity behind it.
    const recorded = (await upgrade(vms.a1, { version: "1.1.0" })).steps.map((s: { name: string }) => s.name) as string[];
    const steps = recorded.map((step) => ({ step, ...activityOf[step]! }));
    expect(steps.map((s) => s.activity).every(Boolean)).toBe(true);
    await expectEachStepFailsCleanly(
      system,
      {
        steps,
        async start() {
          return (await system.request("POST", `/v1/vms/${vms.a2}/agent/upgrade`, { version: "1.4.0" })).body.operationId;
        },
        expectCleanSlate: () => expectAgentAt(vms.a2, "1.0.0"),
      },
      hostA,
    );
  }, 1_200_000);

  test("a fleet upgrade over 3 VMs with one failing stops at maxFailures 0: one done, one failed, one never started", async () => {
    // In name order: fleet-1 (a1, at 1.1.0), fleet-2 (b1: host b's 2.0.0 is corrupt), fleet-3 (a2).
    const res = await system.request("POST", "/v1/agent-upgrades", { selector: { namePrefix: "fleet-" }, version: "2.0.0", maxParallel: 1, maxFailures: 0 });
    expect(res.status).toBe(202);
    const op = await system.waitForOperation(res.body.operationId, undefined, 300_000);
    expect(op).toMatchObject({ state: "FAILED", type: "upgrade-agents", error: { code: "AGENT_UPGRADES_FAILED" } });
    const run = (await system.request("GET", `/v1/agent-upgrades/${res.body.upgradeId}`)).body;
    expect(run.vms.map((v: any) => [v.name, v.outcome, v.error?.code ?? null])).toEqual([
      ["fleet-1", "done", null],
      ["fleet-2", "failed", "CHECKSUM_MISMATCH"],
      ["fleet-3", "not-started", null],
    ]);
    expect(run.progress).toEqual({ total: 3, done: 1, failed: 1, running: 0, pending: 0, skipped: 0, notStarted: 1 });
    expect(run.vms[0]).toMatchObject({ from: "1.1.0", to: "2.0.0" });
    expect(run.vms[1].error).toMatchObject({ code: "CHECKSUM_MISMATCH" });
    expect(run.vms[2].operationId).toBeNull();
    // Each started VM ran its own upgrade-agent operation.
    const child = (await system.request("GET", `/v1/operations/${run.vms[1].operationId}`)).body;
    expect(child).toMatchObject({ type: "upgrade-agent", target: { type: "vm", id: vms.b1 }, state: "FAILED", error: { code: "CHECKSUM_MISMATCH" } });
    await expectAgentAt(vms.a1, "2.0.0", ["1.1.0"]);
    await expectAgentAt(vms.b1, "1.0.0");
    await expectAgentAt(vms.a2, "1.0.0");
  }, 600_000);

  test("a fleet upgrade runs maxParallel children at once, goes on past failures up to maxFailures, and skips a VM whose agent is not connected", async () => {
    // A VM with no OS at all: running, but no agent will ever answer.
    const plain = await system.request("POST", "/v1/vms", { name: "fleet-4", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1, poolId: hostA.poolId });
    expect((await system.waitForOperation(plain.body.operationId)).state).toBe("COMPLETED");
    await pollVm(system, plain.body.vmId, (v) => v.guestAgent?.connected === false);
    const res = await system.request("POST", "/v1/agent-upgrades", { selector: { namePrefix: "fleet-" }, version: "2.0.0", maxParallel: 3, maxFailures: 5 });
    const op = await system.waitForOperation(res.body.operationId, undefined, 300_000);
    expect(op).toMatchObject({ state: "FAILED", error: { code: "AGENT_UPGRADES_FAILED" } });
    const run = (await system.request("GET", `/v1/agent-upgrades/${res.body.upgradeId}`)).body;
    expect(run.vms.map((v: any) => [v.name, v.outcome, v.error?.code ?? null])).toEqual([
      ["fleet-1", "done", null],
      ["fleet-2", "failed", "CHECKSUM_MISMATCH"],
      ["fleet-3", "done", null],
      ["fleet-4", "skipped", "AGENT_NOT_CONNECTED"],
    ]);
    expect(run.progress).toEqual({ total: 4, done: 2, failed: 1, running: 0, pending: 0, skipped: 1, notStarted: 0 });
    expect(run.vms[3].error).toMatchObject({ code: "AGENT_NOT_CONNECTED" });
    // The first three started together (maxParallel 3), before any of them finished.
    const started = run.vms.slice(0, 3).map((v: any) => new Date(v.startedAt).getTime());
    const firstFinished = Math.min(...run.vms.slice(0, 3).map((v: any) => new Date(v.finishedAt).getTime()));
    expect(Math.max(...started)).toBeLessThan(firstFinished);
    await expectAgentAt(vms.a2, "2.0.0", ["1.0.0"]);
  }, 600_000);
});
