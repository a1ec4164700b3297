/**
 * Supervisor behind scripts/run-system.sh: prepares the database, then runs the control-plane
 * worker, this machine's host worker and the API as child processes, and stops them together.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { applyMigrations, startEmbeddedPostgres, type EmbeddedDatabase } from "../common/database";

const root = path.resolve(__dirname, "..");
const dataDir = path.join(root, ".data");
const EMBEDDED_POSTGRES_PORT = 54329;

/** The API token: QX_API_TOKENS when set, otherwise one generated once and kept in .data/. */
function apiTokens(): string {
  if (process.env.QX_API_TOKENS) return process.env.QX_API_TOKENS;
  const file = path.join(dataDir, "api-token");
  if (!existsSync(file)) writeFileSync(file, randomBytes(24).toString("base64url"), { mode: 0o600 });
  return `${readFileSync(file, "utf8").trim()}=admin`;
}

/** QX_SECRETS_KEY when set, otherwise one generated once and kept in .data/ (0600). */
function secretsKey(): string {
  if (process.env.QX_SECRETS_KEY) return process.env.QX_SECRETS_KEY;
  const file = path.join(dataDir, "secrets-key");
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString("base64"), { mode: 0o600 });
  return readFileSync(file, "utf8").trim();
}

/** qemu:///system where libvirt is installed; libvirt's in-memory test driver (simulated) elsewhere. */
function libvirtUri(): string {
  if (process.env.QX_LIBVIRT_URI) return process.env.QX_LIBVIRT_URI;
  if (existsSync("/usr/sbin/libvirtd") && process.getuid?.() === 0) return "qemu:///system";
  console.warn("libvirt is not available: the host worker uses test:///default, a SIMULATED hypervisor (no real guests)");
  return "test:///default";
}

/**
 * The host worker joins the OVN stack run-system.sh started (scripts/services/ovn.sh): its root
 * chassis, on the userspace datapath where the kernel has no openvswitch module (these machines).
 */
function chassisEnv(): Record<string, string> {
  if (!process.env.QX_OVN_STARTED) return {};
  const ovn = path.join(dataDir, "ovn");
  return {
    QX_OVN_SB_REMOTE: process.env.QX_OVN_SB_REMOTE ?? `unix:${ovn}/central/run/ovnsb_db.sock`,
    QX_OVS_DB: process.env.QX_OVS_DB ?? `unix:${ovn}/chassis-root/run/db.sock`,
    QX_OVN_RUNDIR: process.env.QX_OVN_RUNDIR ?? `${ovn}/chassis-root/run`,
    QX_OVS_DATAPATH_TYPE: process.env.QX_OVS_DATAPATH_TYPE ?? (existsSync("/sys/module/openvswitch") ? "system" : "netdev"),
  };
}

async function main(): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(path.join(dataDir, "postgres"), EMBEDDED_POSTGRES_PORT);
    databaseUrl = embedded.url;
  }
  await applyMigrations(databaseUrl);

  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    QX_API_TOKENS: apiTokens(),
    QX_SECRETS_KEY: secretsKey(),
    QX_HOST_ID: process.env.QX_HOST_ID ?? "local",
    QX_LIBVIRT_URI: libvirtUri(),
    QX_LOCAL_POOL_DIR: process.env.QX_LOCAL_POOL_DIR ?? path.join(dataDir, "pools/local"),
    QX_CONSOLE_LOG_DIR: process.env.QX_CONSOLE_LOG_DIR ?? path.join(dataDir, "console"),
    ...chassisEnv(),
  };
  const tsx = path.join(root, "node_modules/.bin/tsx");
  const children: ChildProcess[] = ["workers/control-plane.ts", "workers/host.ts", "api/server.ts"].map((entry) =>
    spawn(tsx, [path.join(root, entry)], { env, stdio: "inherit" }),
  );

  // Where the token is, never the token itself: terminal scrollback and log collectors keep output.
  const tokenFrom = process.env.QX_API_TOKENS ? "QX_API_TOKENS" : path.join(dataDir, "api-token");
  console.log(`\nQuantix is starting:\n  API          http://127.0.0.1:${process.env.QX_API_PORT ?? 8080}  (Authorization: Bearer <token from ${tokenFrom}>)\n  Temporal UI  http://127.0.0.1:8233\n`);

  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))));
    await embedded?.stop();
    process.exit(code);
  };
  for (const child of children) child.once("exit", (code) => void stopAll(code ?? 1));
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
