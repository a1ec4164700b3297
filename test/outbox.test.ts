import { expectCleanSlate } from "./support/assertions";
import { startProcessSystem, waitUntil, type ProcessSystem } from "./support/process-system";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy";
import { TEST_PORTS } from "./support/test-env";

/**
 * What the API committed happens, and what it refused leaves nothing: the API process (its
 * Temporal connection through a proxy the test can hold) is SIGKILLed between committing an
 * operation and starting its workflow; Temporal stops answering the API before and after a commit.
 */
const VM = { name: "outbox", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };
// Issue 7's goal: a committed operation whose API died is started (or closed) within 30 s.
const OUTBOX_GOAL_MS = 30_000;

describe("the operation outbox", () => {
  let proxy: TcpProxy;
  let system: ProcessSystem;
  const measured: number[] = [];

  beforeAll(async () => {
    proxy = await startTcpProxy("127.0.0.1", TEST_PORTS.temporal);
    system = await startProcessSystem({ apiTemporalAddress: `127.0.0.1:${proxy.port}` });
  }, 120_000);
  afterAll(async () => {
    if (measured.length) console.log(`recovery outbox: commit → workflow's first step ${Math.min(...measured)}–${Math.max(...measured)} ms (${measured.length})`);
    await system?.shutdown();
    await proxy?.close();
  });

  async function runningVm(): Promise<{ vmId: string; bootVolumeId: string }> {
    const res = await system.request("POST", "/v1/vms", VM);
    expect(res.status).toBe(202);
    expect((await system.waitForOperation(res.body.operationId)).state).toBe("COMPLETED");
    const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: res.body.vmId } });
    return { vmId: vm.id, bootVolumeId: vm.bootVolumeId };
  }

  /**
   * Sends the request with the API cut off from Temporal, waits for its operation to be committed,
   * SIGKILLs the API, and returns the committed row. Nothing the dead API sent reaches Temporal.
   */
  async function killApiBetweenCommitAndStart(type: string, send: () => Promise<unknown>) {
    const before = new Date();
    proxy.hold();
    const answer = send().catch(() => "no answer");
    let committed: Awaited<ReturnType<typeof system.prisma.operation.findFirst>> = null;
    await waitUntil(async () => {
      committed = await system.prisma.operation.findFirst({ where: { type, createdAt: { gte: before } } });
      return committed !== null;
    }, `a committed ${type} operation`, 10_000, 5);
    await system.api.kill("SIGKILL");
    proxy.dropAll();
    proxy.release();
    expect(await answer).toBe("no answer");
    expect(committed!).toMatchObject({ state: "PENDING", workflowStartedAt: null });
    return committed!;
  }

  /** Waits, reading only the database (no client request), for the operation to end. */
  async function expectRunWithoutAnyRequest(operationId: string, committedAt: Date) {
    await waitUntil(async () => ["COMPLETED", "FAILED", "CANCELLED"].includes((await system.prisma.operation.findUniqueOrThrow({ where: { id: operationId } })).state), "the operation to end", 60_000, 100);
    const op = await system.prisma.operation.findUniqueOrThrow({ where: { id: operationId }, include: { steps: true } });
    expect(op.state).toBe("COMPLETED");
    expect(op.workflowStartedAt).not.toBeNull();
    const firstStep = Math.min(...op.steps.map((s) => s.startedAt.getTime()));
    measured.push(firstStep - committedAt.getTime());
    expect(firstStep - committedAt.getTime()).toBeLessThanOrEqual(OUTBOX_GOAL_MS);
  }

  test("an API SIGKILLed between committing a create and starting it: the control plane starts it, the VM runs", async () => {
    const committed = await killApiBetweenCommitAndStart("create-vm", () => system.request("POST", "/v1/vms", VM));
    await expectRunWithoutAnyRequest(committed.id, committed.createdAt);
    await system.api.start();
    expect((await system.request("GET", `/v1/vms/${committed.targetId}`)).body.state).toBe("RUNNING");
    expect(await system.domainState(committed.targetId)).toBe("running");
    const vm = await system.prisma.vm.findUniqueOrThrow({ where: { id: committed.targetId } });
    const deleted = await system.request("DELETE", `/v1/vms/${vm.id}`);
    expect((await system.waitForOperation(deleted.body.operationId)).state).toBe("COMPLETED");
    await expectCleanSlate(system, vm.id, vm.bootVolumeId);
  }, 120_000);

  test("an API SIGKILLed between committing a delete and starting it: the control plane deletes the VM", async () => {
    const { vmId, bootVolumeId } = await runningVm();
    const committed = await killApiBetweenCommitAndStart("delete-vm", () => system.request("DELETE", `/v1/vms/${vmId}`));
    await expectRunWithoutAnyRequest(committed.id, committed.createdAt);
    await system.api.start();
    await expectCleanSlate(system, vmId, bootVolumeId);
  }, 120_000);

  test("Temporal not answering: a create or delete is 503 TEMPORAL_UNAVAILABLE with Retry-After, and nothing is recorded", async () => {
    const { vmId } = await runningVm();
    const counts = async () => ({ operations: await system.prisma.operation.count(), vms: await system.prisma.vm.count(), volumes: await system.prisma.volume.count() });
    const before = await counts();
    proxy.hold();
    try {
      // Known down (the API's background check): refused before anything is written.
      await waitUntil(async () => (await system.request("POST", "/v1/vms", VM)).status === 503, "the API to notice Temporal is down", 15_000, 500);
      const ready = await system.request("GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(ready.body.checks).toMatchObject({ database: { ok: true }, temporal: { ok: false }, hosts: { ok: true } });
      expect((await system.request("GET", "/healthz")).status).toBe(200);
      const created = await system.request("POST", "/v1/vms", VM);
      expect(created.status).toBe(503);
      expect(created.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(created.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(created.body).toMatchObject({ code: "TEMPORAL_UNAVAILABLE", status: 503 });
      const deleted = await system.request("DELETE", `/v1/vms/${vmId}`);
      expect(deleted.status).toBe(503);
      expect(deleted.body.code).toBe("TEMPORAL_UNAVAILABLE");
      expect(await counts()).toEqual(before);
      expect((await system.prisma.vm.findUniqueOrThrow({ where: { id: vmId } })).state).toBe("RUNNING");
    } finally {
      proxy.dropAll();
      proxy.release();
    }
    await waitUntil(async () => (await system.request("GET", "/readyz")).status === 200, "the API ready again", 15_000, 200);
  }, 120_000);

  test("Temporal stops answering between the commit and the start: 503, and the commit is taken back", async () => {
    await waitUntil(async () => (await system.request("GET", "/readyz")).status === 200, "the API ready", 15_000, 200);
    const before = { operations: await system.prisma.operation.count(), vms: await system.prisma.vm.count() };
    // Held right before the request: the API still believes Temporal is up, commits, and its start times out.
    proxy.hold();
    let created;
    try {
      created = await system.request("POST", "/v1/vms", VM);
    } finally {
      proxy.dropAll();
      proxy.release();
    }
    expect(created.status).toBe(503);
    expect(created.body).toMatchObject({ code: "TEMPORAL_UNAVAILABLE" });
    expect(created.body.detail).toMatch(/could not be started/);
    expect({ operations: await system.prisma.operation.count(), vms: await system.prisma.vm.count() }).toEqual(before);
  }, 60_000);
});
