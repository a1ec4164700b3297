import { rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import path from "node:path";
import { apiClient, removeDomains, TEST_TOKEN, TEST_USER } from "./support/api-client";
import { commandLine, descendants, processAlive, RealProcess } from "./support/processes";
import { waitUntil } from "./support/process-system";
import { instance, RUN_SYSTEM_TEST_PORTS, testPaths } from "./support/test-env";

/**
 * scripts/run-system.sh as a user runs it (setup, supervisor, Temporal, embedded PostgreSQL,
 * migrations, workers, API), on ports and directories of its own beside the running system and
 * the test services. One child SIGKILLed comes back; a SIGTERM to the script (its pid only)
 * leaves none of its processes; a child that cannot start stops the system with a clear message.
 */
const ports = RUN_SYSTEM_TEST_PORTS;
const dataDir = testPaths.runSystemDir;
const apiUrl = `http://127.0.0.1:${ports.api}`;
const api = apiClient(() => apiUrl);

function runSystem(logName: string): RealProcess {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  return new RealProcess({
    name: "run-system.sh",
    entry: { command: "bash", args: ["scripts/run-system.sh"] },
    env: {
      ...env,
      QX_DATA_DIR: dataDir,
      QX_TEMPORAL_PORT: String(ports.temporal),
      QX_TEMPORAL_UI_PORT: String(ports.temporalUi),
      QX_POSTGRES_PORT: String(ports.postgres),
      QX_API_PORT: String(ports.api),
      QX_HOST_ID: `rs${instance}`,
      QX_API_TOKENS: `${TEST_TOKEN}=${TEST_USER}`,
      // scripts/run-tests.sh ran setup before jest.
      QX_SKIP_SETUP: "1",
      // No OVN: its chassis for libvirt is one per machine (the network suites start their own stacks).
      QX_OVN: "0",
    },
    logFile: path.join(testPaths.dataDir, `test-run-system-${instance}-${logName}.log`),
    isReady: async () => (await fetch(`${apiUrl}/readyz`)).ok,
    readyTimeoutMs: 240_000,
  });
}

/** The supervisor's child running `entry` (by parent pid and command line, never by a name search). */
function childRunning(supervisor: number, entry: string): number {
  const pid = descendants(supervisor).find((p) => commandLine(p).includes(entry));
  if (!pid) throw new Error(`no child of ${supervisor} runs ${entry}`);
  return pid;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe("run-system.sh supervises the system", () => {
  let script: RealProcess;
  const everything = new Set<number>();

  beforeAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
    script = runSystem("main");
    await script.start();
  }, 300_000);

  afterAll(async () => {
    if (script?.running) {
      const vms = await api.request("GET", "/v1/vms").catch(() => undefined);
      await removeDomains((vms?.body?.items ?? []).map((vm: { id: string }) => vm.id));
    }
    // A SIGKILLed supervisor could not stop its children: it gets SIGTERM, and whatever is left of
    // what it started (a failed test) is killed by pid.
    if (script?.running) {
      for (const pid of descendants(script.pid!)) everything.add(pid);
      process.kill(script.pid!, "SIGTERM");
      await withTimeout(script.whenExited(), 30_000, () => "run-system.sh did not stop").catch(() => undefined);
    }
    await script?.kill();
    for (const pid of everything) if (processAlive(pid)) process.kill(pid, "SIGKILL");
    await rm(dataDir, { recursive: true, force: true });
  });

  test("a SIGKILLed child is restarted with a line in the log, and the system serves again", async () => {
    const supervisor = script.pid!;
    for (const [entry, name] of [
      ["workers/host.ts", "host worker"],
      ["workers/control-plane.ts", "control-plane worker"],
      ["api/server.ts", "API"],
    ] as const) {
      const victim = childRunning(supervisor, entry);
      process.kill(victim, "SIGKILL");
      await waitUntil(async () => script.logTail(200).includes(`${name} was killed by SIGKILL; restarting`), `${name} restarted`, 30_000, 100);
      await waitUntil(async () => childRunning(supervisor, entry) !== victim, `a new ${name}`, 30_000, 100).catch(() => undefined);
      await waitUntil(async () => (await fetch(`${apiUrl}/readyz`).catch(() => undefined))?.ok === true, "the system ready again", 60_000, 200);
    }
    const created = await api.request("POST", "/v1/vms", { name: "supervised", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 });
    expect(created.status).toBe(202);
    expect((await api.waitForOperation(created.body.operationId)).state).toBe("COMPLETED");
    const deleted = await api.request("DELETE", `/v1/vms/${created.body.vmId}`);
    expect((await api.waitForOperation(deleted.body.operationId)).state).toBe("COMPLETED");
  }, 240_000);

  test("a SIGTERM to the script stops every process it started", async () => {
    const supervisor = script.pid!;
    const started = [supervisor, ...descendants(supervisor)];
    for (const pid of started) everything.add(pid);
    // Temporal, PostgreSQL, both workers and the API at least.
    expect(started.length).toBeGreaterThanOrEqual(6);
    process.kill(supervisor, "SIGTERM");
    await script.whenExited();
    expect(script.exitCode).toBe(0);
    expect(started.filter(processAlive)).toEqual([]);
    expect(script.logTail(20)).toMatch(/\[run-system\] .* stopped/);
    await expect(fetch(`${apiUrl}/healthz`)).rejects.toThrow();
  }, 120_000);

  test("a child that keeps crashing stops the system with a message saying which", async () => {
    // The API cannot listen: its port is taken.
    const blocker: Server = await new Promise((resolve) => {
      const s = createServer().listen(ports.api, "127.0.0.1", () => resolve(s));
    });
    const looping = runSystem("crash-loop");
    try {
      looping.options.isReady = async () => true;
      await looping.start();
      const seen = new Set<number>();
      const sampler = setInterval(() => {
        if (looping.pid) for (const pid of [looping.pid, ...descendants(looping.pid)]) seen.add(pid);
      }, 100);
      await withTimeout(looping.whenExited(), 180_000, () => `still running:\n${looping.logTail()}`);
      clearInterval(sampler);
      for (const pid of seen) everything.add(pid);
      expect(looping.exitCode).toBe(1);
      expect(looping.logTail(100_000)).toMatch(/API keeps crashing \(.*died 5 times within 60 s\): stopping the system/);
      expect([...seen].filter(processAlive)).toEqual([]);
    } finally {
      await looping.kill();
      await new Promise((r) => blocker.close(r));
    }
  }, 240_000);
});
