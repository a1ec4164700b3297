/**
 * The supervisor behind scripts/run-system.sh (which execs it, so a signal to the script is a
 * signal to this process): runs the Temporal dev server, PostgreSQL (DATABASE_URL, or embedded),
 * the migrations, the control-plane worker, this machine's host worker and the API, and keeps them
 * running. A child that dies is restarted with backoff and a line in the log; a child that keeps
 * dying (a crash loop) stops the whole system with a message saying which and why to look in its
 * output. SIGTERM, SIGINT or SIGHUP stops everything it started: each child runs in its own process
 * group and the whole group is signalled, so nothing it started is left running.
 *
 * Ports and directories come from the environment, so a second system (a test) can run beside it:
 *   QX_DATA_DIR (.data)  QX_TEMPORAL_PORT (7233)  QX_TEMPORAL_UI_PORT (8233)
 *   QX_POSTGRES_PORT (54329, embedded only)  QX_API_PORT (8080)  QX_HOST_ID (local)
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Connection } from "@temporalio/client";
import { bundleWorkflowCode } from "@temporalio/worker";
import { Client as PgClient } from "pg";
import { applyMigrations, embeddedPostgresUrl } from "../common/database";

const root = path.resolve(__dirname, "..");
const dataDir = path.resolve(process.env.QX_DATA_DIR ?? path.join(root, ".data"));
const temporalPort = Number(process.env.QX_TEMPORAL_PORT ?? 7233);
const temporalUiPort = Number(process.env.QX_TEMPORAL_UI_PORT ?? 8233);
const postgresPort = Number(process.env.QX_POSTGRES_PORT ?? 54329);
const apiPort = Number(process.env.QX_API_PORT ?? 8080);

/** Restart policy: the first restart after 0.5 s, doubling to 10 s; five deaths within a minute is a crash loop. */
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;
const CRASH_LOOP_DEATHS = 5;
const CRASH_LOOP_WINDOW_MS = 60_000;
/** A child that ran this long without dying starts over at the first backoff. */
const HEALTHY_AFTER_MS = 30_000;
/** How long a child gets to stop on SIGTERM before its group is SIGKILLed. */
const STOP_GRACE_MS = 10_000;

function log(message: string): void {
  console.log(`[run-system] ${new Date().toISOString()} ${message}`);
}

/** A file in the data directory made once with random content (mode 0600). */
function generatedOnce(name: string, make: () => string): string {
  const file = path.join(dataDir, name);
  if (!existsSync(file)) writeFileSync(file, make(), { mode: 0o600 });
  return readFileSync(file, "utf8").trim();
}

/** qemu:///system where libvirt is installed; libvirt's in-memory test driver (simulated) elsewhere. */
function libvirtUri(): string {
  if (process.env.QX_LIBVIRT_URI) return process.env.QX_LIBVIRT_URI;
  if (existsSync("/usr/sbin/libvirtd") && process.getuid?.() === 0) return "qemu:///system";
  console.warn("libvirt is not available: the host worker uses test:///default, a SIMULATED hypervisor (no real guests)");
  return "test:///default";
}

interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

class Supervised {
  private child: ChildProcess | undefined;
  private deaths: number[] = [];
  private backoffMs = FIRST_BACKOFF_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    readonly spec: ChildSpec,
    private readonly onCrashLoop: (name: string, reason: string) => void,
  ) {}

  start(): void {
    const child = spawn(this.spec.command, this.spec.args, { cwd: root, env: this.spec.env, stdio: ["ignore", "inherit", "inherit"], detached: true });
    this.child = child;
    const startedAt = Date.now();
    log(`${this.spec.name} started (pid ${child.pid})`);
    child.once("exit", (code, signal) => {
      this.child = undefined;
      if (this.stopping) return;
      // What the dead child started (PostgreSQL under its wrapper, a command) must not outlive it.
      if (child.pid) signalGroup(child.pid, "SIGKILL");
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const now = Date.now();
      if (now - startedAt >= HEALTHY_AFTER_MS) this.backoffMs = FIRST_BACKOFF_MS;
      this.deaths = [...this.deaths.filter((t) => now - t < CRASH_LOOP_WINDOW_MS), now];
      if (this.deaths.length >= CRASH_LOOP_DEATHS) {
        this.onCrashLoop(this.spec.name, `${how}; it died ${this.deaths.length} times within ${CRASH_LOOP_WINDOW_MS / 1000} s`);
        return;
      }
      log(`${this.spec.name} ${how}; restarting in ${this.backoffMs} ms`);
      this.restartTimer = setTimeout(() => this.start(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    });
  }

  /** SIGTERM to the child's process group, SIGKILL after the grace period; resolves once it is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child?.pid) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    signalGroup(child.pid, "SIGTERM");
    const killer = setTimeout(() => signalGroup(child.pid!, "SIGKILL"), STOP_GRACE_MS);
    await exited;
    clearTimeout(killer);
    // Whatever the child left in its group (a command it ran) goes with it.
    signalGroup(child.pid, "SIGKILL");
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

/** Retries `probe` until it resolves (a service answers), for up to two minutes (a first initdb is slow). */
async function waitFor(what: string, probe: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await probe();
      return;
    } catch (err) {
      if (stopping) throw new Error(`stopped while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`${what} did not come up: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function temporalAnswers(address: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 1_000 });
  await connection.close();
}

async function databaseAnswers(url: string): Promise<void> {
  const client = new PgClient({ connectionString: url, connectionTimeoutMillis: 1_000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Virtual networks: OVN central on its default ports (6641/6642) and this machine's chassis
 * (scripts/services/ovn.sh: daemons of their own, stopped with the system). The host worker joins
 * it, on the userspace datapath where the kernel has no openvswitch module (these machines). A
 * machine whose chassis another stack holds, or without OVN installed, runs without networks.
 */
const ovnScript = path.join(root, "scripts/services/ovn.sh");
const ovnEnv = { ...process.env, QX_OVN_DIR: path.join(dataDir, "ovn"), QX_OVN_ROOT_WAIT_S: "0" };
let ovnStarted = false;

function startVirtualNetworks(): NodeJS.ProcessEnv {
  if (process.env.QX_OVN === "0" || process.getuid?.() !== 0 || !existsSync("/usr/bin/ovn-northd")) return {};
  try {
    execFileSync("bash", [ovnScript, "start"], { env: ovnEnv, stdio: ["ignore", "ignore", "inherit"] });
  } catch {
    console.warn("[run-system] OVN did not start (see above): the system runs without virtual networks");
    execFileSync("bash", [ovnScript, "stop"], { env: ovnEnv, stdio: "ignore" });
    return {};
  }
  ovnStarted = true;
  const ovn = ovnEnv.QX_OVN_DIR;
  return {
    QX_OVN_NB_REMOTE: process.env.QX_OVN_NB_REMOTE ?? `unix:${ovn}/central/run/ovnnb_db.sock`,
    QX_OVN_SB_REMOTE: process.env.QX_OVN_SB_REMOTE ?? `unix:${ovn}/central/run/ovnsb_db.sock`,
    QX_OVS_DB: process.env.QX_OVS_DB ?? `unix:${ovn}/chassis-root/run/db.sock`,
    QX_OVN_RUNDIR: process.env.QX_OVN_RUNDIR ?? `${ovn}/chassis-root/run`,
    QX_OVS_DATAPATH_TYPE: process.env.QX_OVS_DATAPATH_TYPE ?? (existsSync("/sys/module/openvswitch") ? "system" : "netdev"),
  };
}

const children: Supervised[] = [];
let stopping = false;

async function stopAll(code: number, why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`stopping (${why})`);
  // The API first (no new requests), the workers, then PostgreSQL and Temporal.
  for (const child of [...children].reverse()) await child.stop();
  if (ovnStarted) execFileSync("bash", [ovnScript, "stop"], { env: ovnEnv, stdio: "ignore" });
  log("stopped");
  process.exit(code);
}

async function main(): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(signal, () => void stopAll(0, signal));
  const crashLoop = (name: string, reason: string) => {
    console.error(`[run-system] ${name} keeps crashing (${reason}): stopping the system. Its output above says why.`);
    void stopAll(1, `${name} is in a crash loop`);
  };
  const supervise = (spec: ChildSpec) => {
    const child = new Supervised(spec, crashLoop);
    children.push(child);
    child.start();
  };

  const temporalAddress = process.env.QX_TEMPORAL_ADDRESS ?? `127.0.0.1:${temporalPort}`;
  const temporalEnv = {
    ...process.env,
    QX_TEMPORAL_PORT: String(temporalPort),
    QX_TEMPORAL_UI_PORT: String(temporalUiPort),
    QX_TEMPORAL_DIR: process.env.QX_TEMPORAL_DIR ?? path.join(dataDir, "temporal"),
  };
  if (!process.env.QX_TEMPORAL_ADDRESS) {
    supervise({ name: "Temporal dev server", command: "bash", args: [path.join(root, "scripts/services/temporal.sh"), "run"], env: temporalEnv });
  }

  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    supervise({
      name: "embedded PostgreSQL",
      command: process.execPath,
      args: ["--import", "tsx", path.join(root, "scripts/services/embedded-postgres.ts"), path.join(dataDir, "postgres"), String(postgresPort)],
      env: process.env,
    });
    databaseUrl = embeddedPostgresUrl(postgresPort);
  }
  await waitFor(`PostgreSQL`, () => databaseAnswers(databaseUrl!));
  await applyMigrations(databaseUrl);
  await waitFor(`Temporal at ${temporalAddress}`, () => temporalAnswers(temporalAddress));
  // Bundled once here: a restarted control-plane worker loads it and polls again in about a second.
  const bundle = path.join(dataDir, "workflow-bundle.js");
  writeFileSync(bundle, (await bundleWorkflowCode({ workflowsPath: require.resolve("../workflows") })).code);
  if (stopping) return;

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    QX_TEMPORAL_ADDRESS: temporalAddress,
    QX_API_PORT: String(apiPort),
    QX_API_TOKENS: process.env.QX_API_TOKENS ?? `${generatedOnce("api-token", () => randomBytes(24).toString("base64url"))}=admin`,
    QX_SECRETS_KEY: process.env.QX_SECRETS_KEY ?? generatedOnce("secrets-key", () => randomBytes(32).toString("base64")),
    QX_HOST_ID: process.env.QX_HOST_ID ?? "local",
    QX_LIBVIRT_URI: libvirtUri(),
    QX_LOCAL_POOL_DIR: process.env.QX_LOCAL_POOL_DIR ?? path.join(dataDir, "pools/local"),
    QX_CONSOLE_LOG_DIR: process.env.QX_CONSOLE_LOG_DIR ?? path.join(dataDir, "console"),
    QX_WORKFLOW_BUNDLE: bundle,
    QX_AGENT_PACKAGE_DIR: process.env.QX_AGENT_PACKAGE_DIR ?? path.join(dataDir, "agent-packages"),
    ...startVirtualNetworks(),
  };
  for (const [name, entry] of [
    ["control-plane worker", "workers/control-plane.ts"],
    ["host worker", "workers/host.ts"],
    ["API", "api/server.ts"],
  ] as const) {
    supervise({ name, command: process.execPath, args: ["--import", "tsx", path.join(root, entry)], env });
  }

  // Where the token is, never the token itself: terminal scrollback and log collectors keep output.
  const tokenFrom = process.env.QX_API_TOKENS ? "QX_API_TOKENS" : path.join(dataDir, "api-token");
  console.log(
    `\nQuantix is starting:\n  API          http://127.0.0.1:${apiPort}  (Authorization: Bearer <token from ${tokenFrom}>; ready when /readyz answers 200)\n` +
      `  Temporal UI  http://127.0.0.1:${temporalUiPort}\n`,
  );
}

main().catch((err) => {
  console.error("[run-system] could not start:", err);
  // Whatever was started goes down with it.
  void stopAll(1, "start-up failed");
});
