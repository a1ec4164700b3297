import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { createNorthbound, type Northbound } from "../../activities/ovn/northbound";
import { createOvsdbClient, type OvsdbClient } from "../../activities/ovn/ovsdb-client";
import { runCommand } from "../../common/exec";
import { testPaths } from "./test-env";

/**
 * A real OVN stack for one test file (scripts/services/ovn.sh): Northbound, Southbound, northd,
 * and chassis — each an ovsdb-server + ovs-vswitchd (netdev datapath) + ovn-controller. The
 * "root" chassis runs in the root network namespace and owns /run/openvswitch/db.sock, which
 * libvirt plugs guests into (one per machine: another run's root chassis makes this one wait);
 * other chassis run in their own namespaces (qx10-<instance>-<name>) joined by a veth underlay
 * on which they reach each other over Geneve. Ports, directories and names all derive from
 * QX_TEST_INSTANCE. Traffic stays inside these namespaces.
 */
const instance = Number(process.env.QX_TEST_INSTANCE ?? 0);
const script = path.resolve(__dirname, "../../scripts/services/ovn.sh");

export interface TestChassis {
  name: string;
  /** The chassis's OVS database (what its host worker configures). */
  ovsDb: string;
  rundir: string;
  /** Its network namespace; null for the root chassis. */
  netns: string | null;
  encapIp: string;
  /** Runs a command where the chassis's vswitchd is (its namespace), with an argument array. */
  exec(command: string, args: string[]): Promise<string>;
  vsctl(...args: string[]): Promise<string>;
}

export interface OvnStack {
  dir: string;
  nbRemote: string;
  sbRemote: string;
  chassis: TestChassis[];
  northbound: Northbound;
  client: OvsdbClient;
  /** A network namespace of this test run (qx10-<instance>-<name>), removed by stop(). */
  namespace(name: string): Promise<string>;
  stop(): Promise<void>;
}

export const testNetns = (name: string) => `qx10-${instance}-${name}`;

export async function startOvnStack(options: { chassis: ("root" | string)[] }): Promise<OvnStack> {
  const dir = path.join(testPaths.dataDir, `test-ovn-${instance}`);
  const env = {
    ...process.env,
    QX_OVN_DIR: dir,
    QX_OVN_NB_PORT: String(16641 + 10 * instance),
    QX_OVN_SB_PORT: String(16642 + 10 * instance),
    QX_OVN_UNDERLAY_NETNS: testNetns("underlay"),
  };
  const run = (...args: string[]) => execFileSync("bash", [script, ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
  const namespaces = new Set<string>();
  const cleanNamespaces = () => {
    for (const ns of namespaces) execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    namespaces.clear();
  };
  // A run that was killed leaves its stack: stop it and start from empty databases.
  run("stop");
  rmSync(dir, { recursive: true, force: true });
  run("start-central");
  const chassis: TestChassis[] = options.chassis.map((name, i) => {
    const netns = name === "root" ? null : testNetns(name);
    const encapIp = netns ? `198.18.${instance}.${i + 1}` : "127.0.0.1";
    if (netns) run("start-chassis", name, netns, `${encapIp}/24`);
    else run("start-chassis", "root");
    const rundir = path.join(dir, `chassis-${name}`, "run");
    const ovsDb = `unix:${rundir}/db.sock`;
    const exec = async (command: string, args: string[]) =>
      (await (netns ? runCommand("ip", ["netns", "exec", netns, command, ...args]) : runCommand(command, args))).stdout;
    return { name, ovsDb, rundir, netns, encapIp, exec, vsctl: (...args: string[]) => exec("ovs-vsctl", [`--db=${ovsDb}`, "--timeout=10", ...args]) };
  });
  const client = createOvsdbClient(`unix:${dir}/central/run/ovnnb_db.sock`);
  return {
    dir,
    nbRemote: `unix:${dir}/central/run/ovnnb_db.sock`,
    sbRemote: `unix:${dir}/central/run/ovnsb_db.sock`,
    chassis,
    northbound: createNorthbound(client),
    client,
    async namespace(name) {
      const ns = testNetns(name);
      await runCommand("ip", ["netns", "del", ns]).catch(() => undefined);
      await runCommand("ip", ["netns", "add", ns]);
      namespaces.add(ns);
      return ns;
    },
    async stop() {
      await client.close();
      cleanNamespaces();
      run("stop");
    },
  };
}

/** The Southbound view: which chassis claimed a logical port, and whether it is up. */
export async function portBinding(stack: OvnStack, portId: string): Promise<{ chassis: string | null; up: boolean } | null> {
  const out = await runCommand("ovn-sbctl", [`--db=${stack.sbRemote}`, "--format=json", "--columns=chassis,up", "find", "Port_Binding", `logical_port=${portId}`]);
  const table = JSON.parse(out.stdout) as { data: [unknown, unknown][] };
  const row = table.data[0];
  if (!row) return null;
  const chassisUuid = Array.isArray(row[0]) && row[0][0] === "uuid" ? String(row[0][1]) : null;
  const up = Array.isArray(row[1]) ? row[1][1] === true : row[1] === true;
  if (!chassisUuid) return { chassis: null, up };
  const name = (await runCommand("ovn-sbctl", [`--db=${stack.sbRemote}`, "--bare", "--columns=name", "list", "Chassis", chassisUuid])).stdout.trim();
  return { chassis: name, up };
}

/** Waits until `check` holds, polling. */
export async function eventually<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * An endpoint standing for a guest: an OVS internal port with iface-id = the logical port, on the
 * chassis's br-int, moved into its own namespace with the port's MAC (set there: recipe pitfall).
 * With `address` it gets that address statically; without, the caller runs DHCP in it.
 */
export async function plugEndpoint(stack: OvnStack, chassis: TestChassis, port: { id: string; mac: string }, name: string, address?: string): Promise<string> {
  const ns = await stack.namespace(name);
  const dev = `qx10e${name}`.slice(0, 15);
  await chassis.vsctl("--may-exist", "add-port", "br-int", dev, "--", "set", "Interface", dev, "type=internal", `external_ids:iface-id=${port.id}`);
  await eventually(`tap ${dev}`, async () => (await chassis.exec("ip", ["link", "show", dev]).then(() => true, () => false)));
  await chassis.exec("ip", ["link", "set", dev, "netns", ns]);
  await runCommand("ip", ["-n", ns, "link", "set", dev, "address", port.mac]);
  await runCommand("ip", ["-n", ns, "link", "set", "lo", "up"]);
  await runCommand("ip", ["-n", ns, "link", "set", dev, "up"]);
  if (address) await runCommand("ip", ["-n", ns, "addr", "add", address, "dev", dev]);
  return ns;
}

export const endpointDevice = (name: string) => `qx10e${name}`.slice(0, 15);

/** True when `count` pings from the namespace reach `ip` (busybox ping: the image has no iputils). */
export async function pings(ns: string, ip: string, { count = 2, from }: { count?: number; from?: string } = {}): Promise<boolean> {
  const args = ["netns", "exec", ns, "busybox", "ping", "-c", String(count), "-W", "2", ...(from ? ["-I", from] : []), ip];
  return runCommand("ip", args, { timeoutMs: 30_000 }).then(
    () => true,
    () => false,
  );
}
