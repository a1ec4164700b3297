import { execFileSync } from "node:child_process";
import path from "node:path";
import { TEST_PORTS, testPaths } from "./support/test-env";
import { removeNamespaceNetwork, testNetwork } from "./support/test-network";

export default async function globalTeardown(): Promise<void> {
  const root = path.resolve(__dirname, "..");
  execFileSync("bash", [path.join(root, "scripts/services/temporal.sh"), "stop"], {
    stdio: "inherit",
    env: { ...process.env, QX_TEMPORAL_PORT: String(TEST_PORTS.temporal), QX_TEMPORAL_DIR: testPaths.temporalDir },
  });
  await (globalThis as { __qxStopPostgres?: () => Promise<void> }).__qxStopPostgres?.();
  removeNamespaceNetwork(testNetwork());
  if ((globalThis as { __qxStopLibvirtd?: boolean }).__qxStopLibvirtd) {
    execFileSync("bash", [path.join(root, "scripts/services/libvirtd.sh"), "stop"], { stdio: "inherit" });
  }
}
