import { processAlive } from "./support/processes";
import { startProcessSystem, type ProcessSystem } from "./support/process-system";

describe("the system as real processes (test/support/process-system.ts)", () => {
  let system: ProcessSystem;
  beforeAll(async () => {
    system = await startProcessSystem();
  }, 120_000);
  afterAll(async () => {
    await system?.shutdown();
  });

  test("serves a create, survives a SIGKILLed and restarted API, and leaves no process behind", async () => {
    const res = await system.request("POST", "/v1/vms", { name: "proc-1", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 });
    expect(res.status).toBe(202);
    expect((await system.waitForOperation(res.body.operationId)).state).toBe("COMPLETED");
    expect(await system.domainState(res.body.vmId)).toBe("running");
    const killed = system.api.pid!;
    await system.api.restart();
    expect(processAlive(killed)).toBe(false);
    expect((await system.request("GET", `/v1/vms/${res.body.vmId}`)).body.state).toBe("RUNNING");
    const deleted = await system.request("DELETE", `/v1/vms/${res.body.vmId}`);
    expect((await system.waitForOperation(deleted.body.operationId)).state).toBe("COMPLETED");
    const pids = system.processes().flatMap((p) => p.pids);
    await Promise.all(system.processes().map((p) => p.kill()));
    expect(pids.filter(processAlive)).toEqual([]);
  });
});

describe("what the control-plane worker logs", () => {
  let system: ProcessSystem;
  beforeAll(async () => {
    system = await startProcessSystem();
  }, 120_000);
  afterAll(async () => {
    await system?.shutdown();
  });

  test("an expected failure (no host can take the VM) is one line with the operation id, not a stack trace", async () => {
    const res = await system.request("POST", "/v1/vms", { name: "too-big", vcpus: 64, memoryMiB: 64, diskSizeGiB: 1 });
    const op = await system.waitForOperation(res.body.operationId);
    expect(op).toMatchObject({ state: "FAILED", error: { code: "NO_HOST_AVAILABLE" } });
    await new Promise((r) => setTimeout(r, 500));
    const log = system.controlPlane.logTail(400);
    const lines = log.split("\n").filter((l) => l.includes(op.id));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    for (const line of lines) expect(line).toMatch(/NO_HOST_AVAILABLE: no online host/);
    expect(log).not.toMatch(/^\s+at /m);
  });
});
