import path from "node:path";

/**
 * Ports and directories of the test services, apart from the running system's own (7233, 8233,
 * 54329). QX_TEST_INSTANCE=N shifts them all, so several test runs can share one machine.
 */
export const instance = Number(process.env.QX_TEST_INSTANCE ?? 0);

export const TEST_PORTS = { temporal: 7244 + 10 * instance, temporalUi: 8244 + 10 * instance, postgres: 54331 + instance };

/** A whole run-system.sh started by a test, beside the running system and the test services. */
export const RUN_SYSTEM_TEST_PORTS = { temporal: 7247 + 10 * instance, temporalUi: 8247 + 10 * instance, postgres: 54351 + instance, api: 18080 + instance };

const dataDir = path.resolve(__dirname, "../../.data");

export const testPaths = {
  dataDir,
  temporalDir: path.join(dataDir, `test-temporal-${instance}`),
  postgresDir: path.join(dataDir, `test-postgres-${instance}`),
  templateDatabase: `qx_test_template_${instance}`,
  runSystemDir: path.join(dataDir, `test-run-system-${instance}`),
};

export const TEST_TEMPORAL_ADDRESS = `127.0.0.1:${TEST_PORTS.temporal}`;
