import { runCommand } from "../common/exec";
import { NB_DB } from "../activities/ovn/nb-names";
import { OvsdbTransactionError } from "../activities/ovn/ovsdb-client";
import { expectEachStepFailsCleanly } from "./support/each-step-fails";
import { endpointDevice, eventually, pings, plugEndpoint, portBinding, startOvnStack, type OvnStack } from "./support/ovn";
import { startTestSystem, type TestSystem } from "./support/system";

/**
 * Networks and ports through the API on a real OVN stack (central + one chassis whose
 * ovs-vswitchd and ovn-controller run in their own network namespace). The endpoints are OVS
 * internal ports moved into network namespaces of their own (shared recipe ovn.md, section 3):
 * they stand for guests (no VM here), get DHCP leases from OVN and ping each other.
 */
let stack: OvnStack;
let system: TestSystem;

beforeAll(async () => {
  stack = await startOvnStack({ chassis: ["hv1"] });
  system = await startTestSystem({ ovn: { stack, chassis: ["hv1"] } });
}, 120_000);

afterAll(async () => {
  await system?.shutdown();
  await stack?.stop();
});

async function completed(res: { status: number; body: any }) {
  // The problem's body, when it is one, says why.
  expect({ status: res.status, problem: res.status === 202 ? undefined : res.body }).toEqual({ status: 202, problem: undefined });
  const op = await system.waitForOperation(res.body.operationId);
  expect({ state: op.state, error: op.error }).toEqual({ state: "COMPLETED", error: null });
  return res.body;
}

async function createNetwork(body: Record<string, unknown>): Promise<string> {
  return (await completed(await system.request("POST", "/v1/networks", { cidr: "10.61.0.0/24", ...body }))).networkId;
}

async function createPort(body: Record<string, unknown>): Promise<any> {
  const { portId } = await completed(await system.request("POST", "/v1/ports", body));
  return (await system.request("GET", `/v1/ports/${portId}`)).body;
}

/** OVN's DHCP over a real exchange: busybox udhcpc in the namespace; returns the leased address. */
async function dhcpLease(ns: string, dev: string): Promise<string> {
  const out = await runCommand("ip", ["netns", "exec", ns, "busybox", "udhcpc", "-i", dev, "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", "/bin/true"], { timeoutMs: 30_000 });
  const lease = /lease of (\S+) obtained/.exec(out.stdout + out.stderr);
  if (!lease) throw new Error(`no DHCP lease: ${out.stdout}${out.stderr}`);
  return lease[1]!;
}

async function ownedNbRows() {
  return stack.northbound.ownedRows();
}

test("the OVSDB client applies a transaction whole or not at all", async () => {
  const before = await ownedNbRows();
  const failing = stack.client.transact(NB_DB, [
    { op: "insert", table: "Logical_Switch", row: { name: "qx10-atomicity", external_ids: ["map", [["qx-owner", "quantix"]]] } },
    { op: "insert", table: "Logical_Switch_Port", row: { name: "no-such-column-value", type: 42 as never } },
  ]);
  await expect(failing).rejects.toBeInstanceOf(OvsdbTransactionError);
  await expect(failing).rejects.toMatchObject({ operationIndex: 1 });
  expect(await ownedNbRows()).toEqual(before);
});

test("bad networks are refused before anything starts", async () => {
  const cases: Record<string, unknown>[] = [
    { name: "n", cidr: "10.61.0.5/24" },
    { name: "n", cidr: "10.61.0.0/24", gateway: "10.62.0.1" },
    { name: "n", cidr: "10.61.0.0/24", type: "vlan", physicalNetwork: "physnet1" },
    { name: "n", cidr: "10.61.0.0/24", type: "overlay", vlanTag: 5 },
    { name: "n", cidr: "10.61.0.0/24", reservedRanges: [{ start: "10.61.0.50", end: "10.61.0.40" }] },
  ];
  for (const body of cases) {
    const res = await system.request("POST", "/v1/networks", body);
    expect({ body, status: res.status, code: res.body.code }).toEqual({ body, status: 400, code: "VALIDATION_FAILED" });
  }
  expect(await system.prisma.operation.count({ where: { type: "create-network" } })).toBe(0);
});

test("a network is a switch with DHCP and DNS; IPAM skips the gateway and reserved ranges; endpoints lease, reach each other, cannot spoof", async () => {
  const networkId = await createNetwork({ name: "lab", dnsServers: ["10.61.0.2"], reservedRanges: [{ start: "10.61.0.2", end: "10.61.0.9" }] });
  const rows = (await ownedNbRows()).filter((r) => r.externalIds["qx-network-id"] === networkId);
  expect(rows.map((r) => r.table).sort()).toEqual(["DHCP_Options", "DNS", "Logical_Switch"]);

  const first = await createPort({ networkId, name: "a" });
  const second = await createPort({ networkId, name: "b" });
  const fixed = await createPort({ networkId, ip: "10.61.0.200" });
  expect([first.ip, second.ip, fixed.ip]).toEqual(["10.61.0.10", "10.61.0.11", "10.61.0.200"]);
  for (const port of [first, second, fixed]) expect(parseInt(port.mac.slice(0, 2), 16) & 0b11).toBe(0b10); // locally administered unicast
  expect(new Set([first.mac, second.mac, fixed.mac]).size).toBe(3);

  for (const [ip, code] of [["10.61.0.200", "ADDRESS_IN_USE"], ["10.61.0.1", "VALIDATION_FAILED"], ["10.61.0.5", "VALIDATION_FAILED"], ["10.62.0.5", "VALIDATION_FAILED"]] as const) {
    const res = await system.request("POST", "/v1/ports", { networkId, ip });
    expect({ ip, status: res.status, code: res.body.code }).toEqual({ ip, status: code === "ADDRESS_IN_USE" ? 409 : 400, code });
  }

  // Endpoints (network namespaces standing for guests) on the chassis, addressed by DHCP.
  const hv1 = stack.chassis[0]!;
  const nsA = await plugEndpoint(stack, hv1, first, "a");
  const nsB = await plugEndpoint(stack, hv1, second, "b");
  for (const port of [first, second]) {
    const binding = await eventually(`binding of ${port.id}`, async () => ((await portBinding(stack, port.id))?.up ? portBinding(stack, port.id) : null));
    expect(binding.chassis).toBe(system.hosts[0]!.id);
  }
  expect(await dhcpLease(nsA, endpointDevice("a"))).toBe(first.ip);
  expect(await dhcpLease(nsB, endpointDevice("b"))).toBe(second.ip);
  await runCommand("ip", ["-n", nsA, "addr", "add", `${first.ip}/24`, "dev", endpointDevice("a")]);
  await runCommand("ip", ["-n", nsB, "addr", "add", `${second.ip}/24`, "dev", endpointDevice("b")]);
  expect(await pings(nsA, second.ip)).toBe(true);

  // Port security: a source address that is not the port's is dropped.
  await runCommand("ip", ["-n", nsA, "addr", "add", "10.61.0.99/24", "dev", endpointDevice("a")]);
  expect(await pings(nsA, second.ip, { from: "10.61.0.99" })).toBe(false);
  expect(await pings(nsA, second.ip)).toBe(true);

  // A network with ports cannot be deleted; without them it goes, and its rows with it.
  const refused = await system.request("DELETE", `/v1/networks/${networkId}`);
  expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: "NETWORK_IN_USE" });
  for (const port of [first, second, fixed]) await completed(await system.request("DELETE", `/v1/ports/${port.id}`));
  expect((await ownedNbRows()).filter((r) => r.table === "Logical_Switch_Port")).toEqual([]);
  await completed(await system.request("DELETE", `/v1/networks/${networkId}`));
  expect(await ownedNbRows()).toEqual([]);
  expect(await system.prisma.network.count()).toBe(0);
});

test("a batch of ports is one operation and one Northbound transaction, or nothing", async () => {
  const networkId = await createNetwork({ name: "batch", cidr: "10.60.0.0/24" });
  const refused = await system.request("POST", "/v1/ports", { ports: [{ networkId, ip: "10.60.0.50" }, { networkId, ip: "10.60.0.50" }] });
  expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: "ADDRESS_IN_USE" });
  expect(await system.prisma.port.count()).toBe(0);

  const { portIds } = await completed(await system.request("POST", "/v1/ports", { ports: Array.from({ length: 20 }, () => ({ networkId })) }));
  const ports = await system.prisma.port.findMany({ where: { id: { in: portIds } } });
  expect(ports.map((p) => p.state)).toEqual(Array(20).fill("ACTIVE"));
  expect(new Set(ports.map((p) => p.ip)).size).toBe(20);
  expect(new Set(ports.map((p) => p.mac)).size).toBe(20);
  expect((await ownedNbRows()).filter((r) => r.table === "Logical_Switch_Port").length).toBe(20);
  for (const id of portIds) await completed(await system.request("DELETE", `/v1/ports/${id}`));
  await completed(await system.request("DELETE", `/v1/networks/${networkId}`));
});

test("a failure at each step of createNetwork leaves no Northbound row behind", async () => {
  let networkId = "";
  const failed: string[] = [];
  await expectEachStepFailsCleanly(system, {
    steps: [
      { step: "validate", activity: "loadNetwork", side: "database" },
      { step: "create-switch", activity: "nbCreateNetwork", side: "network" },
    ],
    async start() {
      const res = await system.request("POST", "/v1/networks", { name: "doomed", cidr: "10.63.0.0/24" });
      networkId = res.body.networkId;
      failed.push(networkId);
      return res.body.operationId;
    },
    async expectCleanSlate() {
      expect(await ownedNbRows()).toEqual([]);
      const network = await system.prisma.network.findUniqueOrThrow({ where: { id: networkId } });
      expect(network.state).toBe("FAILED");
    },
  });
  // A failed network is deleted like any other.
  for (const id of failed) await completed(await system.request("DELETE", `/v1/networks/${id}`));
  expect(await system.prisma.network.count()).toBe(0);
});
