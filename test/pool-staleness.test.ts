import { startTestSystem, type TestSystem } from "./support/system";
import { completed } from "./support/volumes";

/** Pool health reports and placement: a host whose reports stop goes stale and is skipped. */
const SMALL_VM = { name: "stale-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };

let system: TestSystem;
beforeAll(async () => {
  system = await startTestSystem({ poolReportIntervalMs: 1_000, poolStaleAfterMs: 4_000 });
});
afterAll(async () => {
  await system?.shutdown();
});

const host = () => system.hosts[0]!;

describe("pool health reports and placement", () => {
  test("a host that stops reporting goes stale, and placement skips it until it reports again", async () => {
    /** The pool as the API shows it, once `until` holds (reports are recorded asynchronously). */
    const poolWhen = async (until: (pool: any) => boolean) => {
      for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 250))) {
        const pool = (await system.request("GET", `/v1/storage/pools/${host().poolId}`)).body;
        if (until(pool) || Date.now() > deadline) return pool;
      }
    };
    await system.stopPoolReporter(host());
    expect((await poolWhen((p) => p.hosts[0].stale)).status).toMatchObject({ health: "stale", hostsHealthy: 0 });

    const stale = await system.request("POST", "/v1/vms", { ...SMALL_VM, name: "stale-pool-vm", poolId: host().poolId });
    expect(await system.waitForOperation(stale.body.operationId)).toMatchObject({ state: "FAILED", error: { code: "NO_HOST_AVAILABLE" } });

    await system.reportPools(host());
    expect((await poolWhen((p) => !p.hosts[0].stale)).status).toMatchObject({ health: "healthy", hostsHealthy: 1 });
    const fresh = await system.request("POST", "/v1/vms", { ...SMALL_VM, name: "fresh-pool-vm", poolId: host().poolId });
    await completed(system, fresh);
  });
});
