import path from "node:path";

/** Ports and directories of the test services: apart from the system's own (7233, 8233, 54329). */
export const TEST_PORTS = { temporal: 7244, temporalUi: 8244, postgres: 54331 };

const dataDir = path.resolve(__dirname, "../../.data");

export const testPaths = {
  dataDir,
  temporalDir: path.join(dataDir, "test-temporal"),
  postgresDir: path.join(dataDir, "test-postgres"),
  templateDatabase: "qx_test_template",
};

export const TEST_TEMPORAL_ADDRESS = `127.0.0.1:${TEST_PORTS.temporal}`;
