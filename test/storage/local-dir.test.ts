import fs from "node:fs/promises";
import path from "node:path";
import { createLocalDirBackend } from "../../activities/storage/local-dir";
import { backendSuite } from "./backend-suite";
import { removeGuests } from "./kvm-guest";

const DOMAIN_PREFIX = "qxtest-stor-dir-";
const testDir = path.resolve(__dirname, "../../.data", `test-stor-dir-${process.pid}`);
const poolDir = path.join(testDir, "pool");

beforeAll(async () => {
  await removeGuests(DOMAIN_PREFIX);
  await fs.mkdir(testDir, { recursive: true });
});

afterAll(async () => {
  await removeGuests(DOMAIN_PREFIX);
  await fs.rm(testDir, { recursive: true, force: true });
});

describe("local-dir backend", () => {
  backendSuite(() => ({ backend: createLocalDirBackend({ root: poolDir }), poolDir, domainPrefix: DOMAIN_PREFIX }));
});

describe("local-dir pool status", () => {
  test("a missing root is an error, not an empty pool", async () => {
    const status = await createLocalDirBackend({ root: path.join(testDir, "missing") }).status();
    expect(status).toMatchObject({ health: "error", volumeCount: 0 });
    expect(status.message).toMatch(/ENOENT/);
  });
});
