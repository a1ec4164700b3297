import { randomBytes } from "node:crypto";
import { Client as PgClient } from "pg";
import { withDatabase } from "../global-setup";
import { testPaths } from "./test-env";

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A database of its own for one test system, cloned from the template global-setup migrated. */
export async function createTestDatabase(suffix = randomBytes(4).toString("hex")): Promise<TestDatabase> {
  const adminUrl = process.env.QX_TEST_ADMIN_DATABASE_URL;
  if (!adminUrl) throw new Error("global-setup did not run");
  const name = `qx_test_${suffix}`;
  await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name} TEMPLATE ${testPaths.templateDatabase}`));
  return {
    url: withDatabase(adminUrl, name),
    drop: () => withAdmin(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
}

async function withAdmin(adminUrl: string, run: (admin: PgClient) => Promise<unknown>): Promise<void> {
  const admin = new PgClient({ connectionString: adminUrl });
  await admin.connect();
  try {
    await run(admin);
  } finally {
    await admin.end();
  }
}
