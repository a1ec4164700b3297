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
