import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { NativeConnection, Worker, bundleWorkflowCode } from "@temporalio/worker";
import { WorkflowFailedError } from "@temporalio/client";
import { startTestSystem, type TestHost, type TestSystem } from "./support/system";
import { TEST_TEMPORAL_ADDRESS } from "./support/test-env";
import { agentCommand, bootTestGuest, uploadTestGuestImage, waitForAgent } from "./support/test-guest";
import type { FreezeHarnessInput } from "./workflows/freeze-harness";

/**
 * Freeze and thaw of the test guest's ext4 disk through real qemu-ga, driven by the product's
 * withFrozenGuest inside a test workflow (the VM snapshot workflow's stand-in); graceful power
 * actions through the agent. One guest for the whole file.
 */
let system: TestSystem;
let host: TestHost;
let vmId: string;
let connection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
const queue = `freeze-harness-${randomBytes(4).toString("hex")}`;

jest.setTimeout(300_000);

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never;

beforeAll(async () => {
  system = await startTestSystem({ domainType: "qemu", agentStatusIntervalMs: 3_000 });
  host = system.hosts[0]!;
  const imageId = await uploadTestGuestImage(system, host);
  vmId = await bootTestGuest(system, imageId, "freeze-guest");
  connection = await NativeConnection.connect({ address: TEST_TEMPORAL_ADDRESS });
  worker = await Worker.create({
    connection,
    taskQueue: queue,
    workflowBundle: await bundleWorkflowCode({ workflowsPath: require.resolve("./workflows/freeze-harness"), logger: quiet }),
    activities: {
      observeFrozen: (id: string) => agentCommand<string>(id, "guest-fsfreeze-status"),
      async failBetween() {
        throw ApplicationFailure.create({ type: "HYPERVISOR_ERROR", message: "injected failure between freeze and thaw", nonRetryable: true });
      },
      async hangBetween() {
        for (;;) {
          Context.current().heartbeat();
          await Context.current().sleep(200);
        }
      },
    },
  });
  running = worker.run();
}, 400_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
  await system?.shutdown();
});

function startHarness(between: FreezeHarnessInput["between"], timeoutMs = 60_000) {
  return system.temporal.workflow.start("freezeHarness", {
    taskQueue: queue,
    workflowId: `freeze-harness-${randomBytes(4).toString("hex")}`,
    args: [{ hostId: host.id, vmId, timeoutMs, between, testQueue: queue } satisfies FreezeHarnessInput],
  });
}

const freezeState = () => agentCommand<string>(vmId, "guest-fsfreeze-status");
const consoleLog = () => readFileSync(path.join(host.runtime.config.consoleLogDir, `${vmId}.log`), "utf8");
/** What the guest's console said since `mark()` was taken. */
const consoleSince = (offset: number) => consoleLog().slice(offset);
const mark = () => consoleLog().length;

async function failureOf(result: Promise<unknown>): Promise<{ type?: string; message: string }> {
  const err = await result.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause = (err as WorkflowFailedError).cause as Error & { cause?: Error; type?: string };
  while (cause?.cause && !(cause instanceof ApplicationFailure)) cause = cause.cause as typeof cause;
  return { type: (cause as { type?: string }).type ?? cause.constructor.name, message: cause.message };
}

describe("freeze and thaw through the agent", () => {
  test("the step between sees the guest frozen (by the agent); afterwards it is thawed and the watchdog gone", async () => {
    const since = mark();
    const handle = await startHarness("observe", 8_000);
    expect(await handle.result()).toBe("frozen");
    expect(await freezeState()).toBe("thawed");
    // The freeze's watchdog was stopped with the thaw: past its deadline, it has thawed nothing.
    await new Promise((r) => setTimeout(r, 9_000));
    expect(consoleSince(since)).not.toContain("freeze watchdog thawed");
  });

  test("a failure injected between freeze and thaw: the workflow fails with it and the guest is thawed", async () => {
    const failure = await failureOf((await startHarness("fail")).result());
    expect(failure).toMatchObject({ type: "HYPERVISOR_ERROR", message: "injected failure between freeze and thaw" });
    expect(await freezeState()).toBe("thawed");
  });

  test("the workflow cancelled while frozen: thawed", async () => {
    const handle = await startHarness("hang");
    for (let i = 0; i < 100 && (await freezeState()) !== "frozen"; i++) await new Promise((r) => setTimeout(r, 200));
    expect(await freezeState()).toBe("frozen");
    await handle.cancel();
    const failure = await failureOf(handle.result());
    expect(failure.type).toBe("CancelledFailure");
    expect(await freezeState()).toBe("thawed");
  });

  test("a step that outlives the freeze's timeout is cancelled at it (FREEZE_TIMEOUT) and the guest thawed", async () => {
    const started = Date.now();
    const failure = await failureOf((await startHarness("hang", 3_000)).result());
    expect(failure.type).toBe("FREEZE_TIMEOUT");
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(await freezeState()).toBe("thawed");
  });

  test("no one left to thaw (the workflow terminated, the host worker gone): the guest's watchdog thaws at the timeout", async () => {
    const since = mark();
    const handle = await startHarness("hang", 5_000);
    for (let i = 0; i < 100 && (await freezeState()) !== "frozen"; i++) await new Promise((r) => setTimeout(r, 200));
    await system.stopHostWorker(host);
    await handle.terminate("the control plane lost it");
    try {
      const deadline = Date.now() + 60_000;
      while (!consoleSince(since).includes("freeze watchdog thawed") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      expect(consoleSince(since)).toMatch(/quantix-agent: freeze watchdog thawed \/data after 5 s/);
      // qemu-ga still believes it froze the guest; the host's next thaw finds nothing frozen.
      expect(await freezeState()).toBe("frozen");
      expect(await agentCommand<number>(vmId, "guest-fsfreeze-thaw")).toBe(0);
    } finally {
      await agentCommand(vmId, "guest-fsfreeze-thaw").catch(() => undefined);
      await system.startHostWorker(host);
    }
    expect(await freezeState()).toBe("thawed");
  });
});

describe("graceful power actions through the agent", () => {
  test("reboot goes through the agent: the guest restarts and its agent comes back", async () => {
    const since = mark();
    const res = await system.request("POST", `/v1/vms/${vmId}/actions/reboot`);
    expect((await system.waitForOperation(res.body.operationId)).state).toBe("COMPLETED");
    // The guest's /sbin/shutdown (which qemu-ga runs) says so on the console, then it boots again.
    const deadline = Date.now() + 120_000;
    while (!/init: agent port/.test(consoleSince(since)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    expect(consoleSince(since)).toMatch(/shutdown [^\n]*-r \+0[\s\S]*init: agent port/);
    await waitForAgent(vmId);
  });

  test("stop goes through the agent (this guest ignores ACPI): off, and the status says disconnected", async () => {
    const since = mark();
    const res = await system.request("POST", `/v1/vms/${vmId}/actions/stop`, { timeoutSeconds: 120 });
    expect((await system.waitForOperation(res.body.operationId, undefined, 150_000)).state).toBe("COMPLETED");
    expect(await system.domainState(vmId)).toBe("shut off");
    expect(consoleSince(since)).toMatch(/shutdown -h -P \+0/);
    const deadline = Date.now() + 30_000;
    let agent: any;
    while (Date.now() < deadline) {
      agent = (await system.request("GET", `/v1/vms/${vmId}`)).body.guestAgent;
      if (agent?.connected === false) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(agent).toMatchObject({ connected: false });
  });
});
