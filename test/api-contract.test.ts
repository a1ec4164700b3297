import { XMLParser } from "fast-xml-parser";
import { buildDomainXml } from "../activities/libvirt/domain-xml";
import { startTestSystem, TEST_TOKEN, type TestSystem } from "./support/system";

const VALID = { name: "api-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };

describe("REST API contract", () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem();
  });
  afterAll(async () => {
    await system?.shutdown();
  });

  async function nothingStarted(): Promise<void> {
    expect(await system.prisma.operation.count()).toBe(0);
    expect(await system.prisma.vm.count()).toBe(0);
    // Only user operations count: hosts announce themselves and report pool health on their own.
    const { count } = await system.temporal.workflow.count(
      `TaskQueue = "${system.config.controlPlaneQueue}" AND WorkflowType NOT IN ("announceHost", "monitorHost")`,
    );
    expect(count).toBe(0);
  }

  function expectProblem(res: { status: number; headers: Headers; body: any }, status: number, code: string): void {
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status, code, type: expect.stringContaining("quantix.dev/problems/"), title: expect.any(String), detail: expect.any(String) });
  }

  describe("bad input gets problem+json and starts nothing", () => {
    test.each([
      ["a missing field", { name: "x", vcpus: 1, memoryMiB: 64 }],
      ["negative memory", { ...VALID, memoryMiB: -512 }],
      ["fractional vCPUs", { ...VALID, vcpus: 1.5 }],
      ["a string where a number goes", { ...VALID, diskSizeGiB: "10" }],
      ["XML metacharacters in the name", { ...VALID, name: "<domain type='kvm'>&amp;" }],
      ["a quote in the name", { ...VALID, name: "a\"b" }],
      ["an unknown field", { ...VALID, cpuPinning: "all" }],
      ["a base image outside the pool", { ...VALID, baseImage: "../../etc/shadow" }],
      ["an absolute base image path", { ...VALID, baseImage: "/etc/shadow" }],
    ])("%s → 400", async (_why, body) => {
      const res = await system.request("POST", "/v1/vms", body);
      expectProblem(res, 400, "VALIDATION_FAILED");
      expect(res.body.errors.length).toBeGreaterThan(0);
      await nothingStarted();
    });

    test("malformed JSON → 400", async () => {
      expectProblem(await system.request("POST", "/v1/vms", "{not json"), 400, "VALIDATION_FAILED");
      await nothingStarted();
    });

    test("a 10 MB body → 413, refused before it is parsed", async () => {
      const huge = JSON.stringify({ ...VALID, padding: "x".repeat(10 * 1024 * 1024) });
      expectProblem(await system.request("POST", "/v1/vms", huge), 413, "PAYLOAD_TOO_LARGE");
      await nothingStarted();
    });

    test("no token or a wrong token → 401 on every /v1 route", async () => {
      for (const path of ["/v1/vms", "/v1/operations", "/v1/hosts"]) {
        expectProblem(await system.request("GET", path, undefined, { authorization: "" }), 401, "UNAUTHORIZED");
        expectProblem(await system.request("GET", path, undefined, { authorization: "Bearer nope" }), 401, "UNAUTHORIZED");
      }
      expectProblem(await system.request("POST", "/v1/vms", VALID, { authorization: `Basic ${TEST_TOKEN}` }), 401, "UNAUTHORIZED");
      await nothingStarted();
    });

    test("unknown VM, operation and action → 404/400", async () => {
      expectProblem(await system.request("GET", "/v1/vms/5b7f4c7e-1d0a-4c55-9d43-3c8e4f0b8a11"), 404, "NOT_FOUND");
      expectProblem(await system.request("GET", "/v1/operations/not-a-uuid"), 400, "VALIDATION_FAILED");
      expectProblem(await system.request("POST", "/v1/vms/5b7f4c7e-1d0a-4c55-9d43-3c8e4f0b8a11/actions/explode"), 400, "VALIDATION_FAILED");
      await nothingStarted();
    });
  });

  test("the domain XML escapes a name with XML metacharacters (defence below validation)", () => {
    const hostile = `evil</title><devices><hostdev/></devices><title>&"'`;
    const xml = buildDomainXml({
      vmId: "00000000-0000-4000-8000-000000000001",
      displayName: hostile,
      vcpus: 1,
      memoryMiB: 64,
      domainType: "kvm",
      bootDisk: { "@_type": "file", "@_device": "disk", source: { "@_file": "/tmp/x.qcow2" } },
      consoleLogPath: "/tmp/console.log",
      installation: "control-plane",
    });
    expect(xml).not.toContain("<hostdev");
    const parsed = new XMLParser({ ignoreAttributes: false, processEntities: true }).parse(xml);
    expect(parsed.domain.title).toBe(hostile);
    expect(parsed.domain.devices.hostdev).toBeUndefined();
  });

  test("GET /healthz answers without a token", async () => {
    const res = await fetch(`${system.api.url}/healthz`);
    expect(res.status).toBe(200);
  });

  test("GET /readyz checks PostgreSQL, Temporal, a polling control-plane worker and an online host", async () => {
    const res = await fetch(`${system.api.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: "ready",
      checks: { database: { ok: true }, temporal: { ok: true }, controlPlaneWorkers: { ok: true }, hosts: { ok: true } },
    });
  });

  test("a body that is not application/json is 415 problem+json and starts nothing; a bodyless action needs no header", async () => {
    const before = await system.prisma.operation.count();
    for (const contentType of ["application/x-www-form-urlencoded", "text/plain", undefined]) {
      const res = await fetch(`${system.api.url}/v1/vms`, {
        method: "POST",
        headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(contentType ? { "content-type": contentType } : {}) },
        body: JSON.stringify({ name: "typed", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 }),
      });
      expect(res.status).toBe(415);
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(await res.json()).toMatchObject({ code: "UNSUPPORTED_MEDIA_TYPE", status: 415 });
    }
    expect(await system.prisma.operation.count()).toBe(before);
    const missing = await fetch(`${system.api.url}/v1/operations/00000000-0000-4000-8000-000000000000/cancel`, { method: "POST", headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect(missing.status).toBe(404);
  });

  describe("idempotency and one operation per VM", () => {
    let vmId: string;

    test("a retried POST with the same Idempotency-Key returns the same operation and creates one VM", async () => {
      const headers = { "idempotency-key": "create-api-vm-1" };
      const first = await system.request("POST", "/v1/vms", VALID, headers);
      const second = await system.request("POST", "/v1/vms", VALID, headers);
      expect(first.status).toBe(202);
      expect(second.status).toBe(202);
      expect(second.body.operationId).toBe(first.body.operationId);
      expect(second.body.vmId).toBe(first.body.vmId);
      expect(second.headers.get("idempotent-replayed")).toBe("true");
      expect(await system.prisma.vm.count()).toBe(1);
      vmId = first.body.vmId;
      expect((await system.waitForOperation(first.body.operationId)).state).toBe("COMPLETED");

      const reused = await system.request("POST", "/v1/vms", { ...VALID, memoryMiB: 128 }, headers);
      expectProblem(reused, 422, "IDEMPOTENCY_KEY_REUSED");
      expect(reused.body.operationId).toBe(first.body.operationId);
      expect(await system.prisma.vm.count()).toBe(1);
    });

    test("a second mutating operation while one runs gets 409 naming the running one", async () => {
      // The guest has no OS and ignores ACPI: a graceful stop keeps running until its timeout.
      const stop = await system.request("POST", `/v1/vms/${vmId}/actions/stop`, { timeoutSeconds: 5 });
      expect(stop.status).toBe(202);
      for (const attempt of [
        () => system.request("DELETE", `/v1/vms/${vmId}`),
        () => system.request("POST", `/v1/vms/${vmId}/actions/force-stop`),
      ]) {
        const res = await attempt();
        expectProblem(res, 409, "OPERATION_IN_PROGRESS");
        expect(res.body.operationId).toBe(stop.body.operationId);
        expect(res.body.detail).toContain(stop.body.operationId);
      }
      expect((await system.waitForOperation(stop.body.operationId)).state).toBe("FAILED");
      const forceStop = await system.request("POST", `/v1/vms/${vmId}/actions/force-stop`);
      expect(forceStop.status).toBe(202);
      expect((await system.waitForOperation(forceStop.body.operationId)).state).toBe("COMPLETED");
    });

    test("a lock left by a workflow terminated by hand is released, never blocking the VM forever", async () => {
      const stop = await system.request("POST", `/v1/vms/${vmId}/actions/start`);
      const op = await system.prisma.operation.findUniqueOrThrow({ where: { id: stop.body.operationId } });
      await system.temporal.workflow.getHandle(op.workflowId).terminate("operator pulled the plug");
      const del = await system.request("DELETE", `/v1/vms/${vmId}`);
      expect(del.status).toBe(202);
      const abandoned = (await system.request("GET", `/v1/operations/${stop.body.operationId}`)).body;
      expect(abandoned).toMatchObject({ state: "FAILED", error: { code: "WORKFLOW_ABORTED" } });
      expect((await system.waitForOperation(del.body.operationId)).state).toBe("COMPLETED");
      expect(await system.domainState(vmId)).toBeNull();
    });
  });
});
