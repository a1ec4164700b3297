import { execFileSync, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { Client } from "pg";
import { applyMigrations, startEmbeddedPostgres } from "../common/database";
import { TEST_PORTS, testPaths } from "./support/test-env";
import { createNamespaceNetwork, testNetwork } from "./support/test-network";

/**
 * Starts the real services every test file shares: libvirtd, a Temporal dev server (fresh
 * database, search attributes registered) and PostgreSQL (DATABASE_URL's server when set,
 * otherwise an embedded one). Migrations go into a template database; each test file clones it.
 */
export default async function globalSetup(): Promise<void> {
  const root = path.resolve(__dirname, "..");
  // A libvirtd this run starts, it also stops (CI leaves nothing running); one already up is left alone.
  const libvirtdWasRunning = spawnSync("pgrep", ["-x", "libvirtd"]).status === 0;
  execFileSync("bash", [path.join(root, "scripts/services/libvirtd.sh"), "start"], { stdio: "inherit" });
  (globalThis as { __qxStopLibvirtd?: boolean }).__qxStopLibvirtd = !libvirtdWasRunning;
  // The namespace the tests' web servers listen in (test/support/test-network.ts).
  createNamespaceNetwork(testNetwork());

  const temporalEnv = {
    ...process.env,
    QX_TEMPORAL_PORT: String(TEST_PORTS.temporal),
    QX_TEMPORAL_UI_PORT: String(TEST_PORTS.temporalUi),
    QX_TEMPORAL_DIR: testPaths.temporalDir,
    QX_TEMPORAL_HEADLESS: "1",
  };
  // A run that was killed leaves its server up: stop it before wiping its database.
  execFileSync("bash", [path.join(root, "scripts/services/temporal.sh"), "stop"], { stdio: "inherit", env: temporalEnv });
  rmSync(testPaths.temporalDir, { recursive: true, force: true });
  execFileSync("bash", [path.join(root, "scripts/services/temporal.sh"), "start"], { stdio: "inherit", env: temporalEnv });

  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres(testPaths.postgresDir, TEST_PORTS.postgres);
    (globalThis as { __qxStopPostgres?: () => Promise<void> }).__qxStopPostgres = embedded.stop;
    adminUrl = embedded.url;
  }
  const templateUrl = withDatabase(adminUrl, testPaths.templateDatabase);
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${testPaths.templateDatabase} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${testPaths.templateDatabase}`);
  await admin.end();
  await applyMigrations(templateUrl);
  process.env.QX_TEST_ADMIN_DATABASE_URL = adminUrl;
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
