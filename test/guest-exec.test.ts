import { expectNoFailedUndo } from "./support/assertions";
import { expectEachStepFailsCleanly } from "./support/each-step-fails";
import type { StepActivity } from "./support/step-failures";
import { startTestSystem, type TestSystem } from "./support/system";
import { bootTestGuest, guestShell, uploadTestGuestImage } from "./support/test-guest";

/**
 * POST /v1/vms/:id/agent/exec on the test guest: real qemu-ga's guest-exec through libvirt, one
 * guest shared by every test of the file (a TCG boot is the expensive part).
 */
let system: TestSystem;
let vmId: string;
jest.setTimeout(300_000);

beforeAll(async () => {
  system = await startTestSystem({ domainType: "qemu" });
  const imageId = await uploadTestGuestImage(system, system.hosts[0]!);
  vmId = await bootTestGuest(system, imageId, "exec-guest");
}, 400_000);

afterAll(async () => {
  await system?.shutdown();
});

async function exec(body: Record<string, unknown>): Promise<any> {
  const res = await system.request("POST", `/v1/vms/${vmId}/agent/exec`, body);
  expect(res.status).toBe(202);
  return system.waitForOperation(res.body.operationId, undefined, 120_000);
}

/** Processes in the guest whose command line contains `marker` (our observer, not the product). */
async function guestProcesses(marker: string): Promise<string[]> {
  const { stdout } = await guestShell(vmId, "ps -o args");
  return stdout.split("\n").filter((l) => l.includes(marker));
}

describe("running scripts in a guest through its agent", () => {
  test("a script's exit code, stdout and stderr come back; stdin reaches it", async () => {
    const op = await exec({ script: 'echo "out $1"; echo err >&2; cat; exit 3', args: ["first"], stdin: "from stdin\n" });
    expect(op).toMatchObject({ state: "COMPLETED", type: "agent-exec", target: { type: "vm", id: vmId } });
    expect(op.result).toMatchObject({ exitCode: 3, signal: null, stdout: "out first\nfrom stdin\n", stderr: "err\n", stdoutTruncated: false, stderrTruncated: false, timedOut: false });
    expect(op.steps.map((s: { name: string }) => s.name)).toEqual(["validate", "run", "record"]);
  });

  test("a program's arguments reach it as they are: no shell sees them", async () => {
    const op = await exec({ path: "/bin/echo", args: ["a  b", "$HOME;reboot", "`id`"] });
    expect(op.result).toMatchObject({ exitCode: 0, stdout: "a  b $HOME;reboot `id`\n" });
  });

  test("output over the cap is cut and flagged", async () => {
    const op = await exec({ script: "head -c 5000 /dev/zero | tr '\\0' x", maxOutputBytes: 100 });
    expect(op.result.stdout).toBe("x".repeat(100));
    expect(op.result.stdoutTruncated).toBe(true);
  });

  test("a runaway script is killed at its time limit, with everything it started", async () => {
    const startedAt = Date.now();
    const op = await exec({ script: "sh -c 'sleep 777'; echo never", timeoutSeconds: 2 });
    expect(op).toMatchObject({ state: "FAILED", error: { code: "GUEST_EXEC_TIMEOUT" } });
    expect(op.result).toMatchObject({ timedOut: true, exitCode: null, signal: 9, stdout: "" });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(2_000);
    expect(await guestProcesses("sleep 777")).toEqual([]);
  });

  test("cancel kills the running script", async () => {
    const res = await system.request("POST", `/v1/vms/${vmId}/agent/exec`, { script: "sleep 888", timeoutSeconds: 600 });
    await system.waitForOperation(res.body.operationId, (op) => op.currentStep === "run");
    // The script is running in the guest before we cancel.
    for (let i = 0; i < 50 && (await guestProcesses("sleep 888")).length === 0; i++) await new Promise((r) => setTimeout(r, 200));
    expect(await guestProcesses("sleep 888")).not.toEqual([]);
    expect((await system.request("POST", `/v1/operations/${res.body.operationId}/cancel`)).status).toBe(202);
    const op = await system.waitForOperation(res.body.operationId);
    expect(op).toMatchObject({ state: "CANCELLED", error: { code: "CANCELLED" } });
    expectNoFailedUndo(op);
    expect(await guestProcesses("sleep 888")).toEqual([]);
  });

  test("bad requests start nothing", async () => {
    for (const body of [{}, { path: "bin/true" }, { path: "/bin/true", script: "true" }, { script: "true", timeoutSeconds: 0 }, { script: "true", extra: 1 }]) {
      const res = await system.request("POST", `/v1/vms/${vmId}/agent/exec`, body);
      expect({ body, status: res.status, code: res.body.code }).toEqual({ body, status: 400, code: "VALIDATION_FAILED" });
    }
  });

  test("each step of runGuestScript fails in turn: the operation fails at that step and no guest process is left", async () => {
    // The steps come from a real run of the workflow; each is mapped to the activity behind it.
    const activityOf: Record<string, Omit<StepActivity, "step">> = {
      validate: { activity: "loadVm", side: "database" },
      run: { activity: "runGuestCommand", side: "host" },
      record: { activity: "operationResult", side: "database" },
    };
    const recorded = (await exec({ script: "true" })).steps.map((s: { name: string }) => s.name) as string[];
    const steps = recorded.map((step) => ({ step, ...activityOf[step]! }));
    expect(steps.every((s) => s.activity)).toBe(true);
    await expectEachStepFailsCleanly(system, {
      steps,
      async start() {
        const res = await system.request("POST", `/v1/vms/${vmId}/agent/exec`, { script: "sleep 1; echo swept", timeoutSeconds: 30 });
        return res.body.operationId;
      },
      async expectCleanSlate() {
        expect(await guestProcesses("echo swept")).toEqual([]);
        expect((await system.request("GET", `/v1/vms/${vmId}`)).body.state).toBe("RUNNING");
      },
    });
  });
});
