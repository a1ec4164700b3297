import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { startTestSystem, TEST_TOKEN, type TestSystem } from "./support/system";

const run = promisify(execFile);
const root = path.resolve(__dirname, "..");
const tsx = path.join(root, "node_modules/.bin/tsx");

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a user would (its own process), against the test system's API. */
async function qx(system: TestSystem, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const env = { ...process.env, QX_API_URL: system.api.url, QX_API_TOKEN: TEST_TOKEN, ...options.env };
  const child = run(tsx, [path.join(root, "cli/qx.ts"), ...args], { env, timeout: 120_000 });
  if (options.input !== undefined) child.child.stdin?.end(options.input);
  else child.child.stdin?.end();
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    if (typeof e.code !== "number") throw err;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("qx, the command line, against the real API", () => {
  let system: TestSystem;
  let workDir: string;
  beforeAll(async () => {
    system = await startTestSystem();
    workDir = await mkdtemp(path.join(os.tmpdir(), "qx-cli-"));
  });
  afterAll(async () => {
    await system?.shutdown();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  let vmId: string;

  test("vm create waits for the operation, prints the VM id, and the domain runs; the password comes from stdin", async () => {
    const keyFile = path.join(workDir, "id.pub");
    await writeFile(keyFile, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7mBIwXGOnZzHmBcjwOAJEG1U4yFXXJ3cJtYvQq3VZ cli@test\n");
    const res = await qx(system, ["vm", "create", "cli-vm", "--vcpus", "1", "--memory", "64", "--disk", "1", "--ssh-key", keyFile, "--password-stdin"], {
      input: "from-stdin-secret\n",
    });
    expect(res).toMatchObject({ code: 0 });
    vmId = res.stdout.trim();
    expect(vmId).toMatch(/^[0-9a-f-]{36}$/);
    // Progress is reported per step seen on stderr (not a terminal here; polled, so which steps it
    // catches varies), ending with the outcome.
    expect(res.stderr).toMatch(/^create-vm: [a-z-]+ \(\d+%\)$/m);
    expect(res.stderr).toMatch(/create-vm [0-9a-f-]{36}: COMPLETED/);
    expect(await system.domainState(vmId)).toBe("running");
    const cloudInit = await system.prisma.vmCloudInit.findUniqueOrThrow({ where: { vmId } });
    expect(cloudInit.passwordHash).toMatch(/^\$6\$/);
    expect(cloudInit.sshAuthorizedKeys).toEqual([expect.stringContaining("cli@test")]);
  });

  test("--json documents: vm show and host list", async () => {
    const vm = await qx(system, ["--json", "vm", "show", vmId]);
    expect(vm.code).toBe(0);
    expect(JSON.parse(vm.stdout)).toMatchObject({ id: vmId, name: "cli-vm", state: "RUNNING", hostId: system.hosts[0]!.id });
    const hosts = await qx(system, ["--json", "host", "list"]);
    expect(JSON.parse(hosts.stdout)).toEqual([expect.objectContaining({ id: system.hosts[0]!.id, allocated: { vcpus: 1, memoryMiB: 64 } })]);
  });

  test("tables for people: vm list and op list show the VM and its completed create", async () => {
    const list = await qx(system, ["vm", "list"]);
    expect(list.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+STATE\s+HOST/);
    expect(list.stdout).toMatch(new RegExp(`${vmId}\\s+cli-vm\\s+RUNNING`));
    const ops = await qx(system, ["op", "list", "--target", vmId]);
    expect(ops.stdout).toMatch(/create-vm\s+vm [0-9a-f-]{36}\s+COMPLETED\s+100%/);
  });

  test("a power action waits for libvirt: force-stop leaves the domain shut off", async () => {
    const res = await qx(system, ["vm", "force-stop", vmId]);
    expect(res.code).toBe(0);
    expect(await system.domainState(vmId)).toBe("shut off");
  });

  test("bad input is the API's problem code, exit 3, and starts nothing", async () => {
    const before = await system.prisma.vm.count();
    const res = await qx(system, ["vm", "create", "bad name!", "--vcpus", "1", "--memory", "64", "--disk", "1"]);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain("VALIDATION_FAILED (HTTP 400)");
    expect(await system.prisma.vm.count()).toBe(before);
    const usage = await qx(system, ["vm", "create", "x", "--vcpus", "one", "--memory", "64", "--disk", "1"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("not a whole number: one");
  });

  test("an operation that fails makes the command exit 1 with its error code", async () => {
    const res = await qx(system, ["vm", "create", "too-big", "--vcpus", "1", "--memory", String(1024 * 1024), "--disk", "1"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/create-vm [0-9a-f-]{36}: FAILED: NO_HOST_AVAILABLE/);
  });

  test("--no-wait returns the accepted operation; op wait follows it; the VM is gone", async () => {
    const accepted = await qx(system, ["--json", "--no-wait", "vm", "delete", vmId]);
    expect(accepted.code).toBe(0);
    const { operationId } = JSON.parse(accepted.stdout);
    const waited = await qx(system, ["op", "wait", operationId]);
    expect(waited.code).toBe(0);
    expect(waited.stderr).toContain(`delete-vm ${operationId}: COMPLETED`);
    expect(await system.domainState(vmId)).toBeNull();
    expect(await system.prisma.vm.count({ where: { id: vmId } })).toBe(0);
  });

  test("without a token the CLI says where it looked and exits 2; it takes no token argument", async () => {
    const res = await qx(system, ["vm", "list"], { env: { QX_API_TOKEN: "", QX_API_TOKEN_FILE: path.join(workDir, "none") } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("no API token");
    const withArg = await qx(system, ["--token", TEST_TOKEN, "vm", "list"]);
    expect(withArg.code).toBe(2);
    expect(withArg.stderr).toContain("unknown option '--token'");
  });
});
