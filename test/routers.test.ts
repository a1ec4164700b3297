import { spawn, type ChildProcess } from "node:child_process";
import { runCommand } from "../common/exec";
import { expectNoFailedUndo } from "./support/assertions";
import { expectEachStepFailsCleanly } from "./support/each-step-fails";
import { eventually, pings, plugEndpoint, portBinding, startOvnStack, type OvnStack } from "./support/ovn";
import { startTestSystem, type TestSystem } from "./support/system";

/**
 * Routers, SNAT and floating IPs on a real OVN stack: one chassis (in its own namespace) whose
 * host worker maps provider network "physnet1" to its bridge br-ext. "Outside" is a namespace on
 * br-ext standing for the provider network (203.0.113.0/24, a documentation range: nothing leaves
 * the namespaces); it knows no route to the tenant network, so any reply it sends there went
 * through NAT. The tenant endpoints are OVS internal ports in namespaces (no guest needed).
 */
let stack: OvnStack;
let system: TestSystem;
const listeners: ChildProcess[] = [];

beforeAll(async () => {
  stack = await startOvnStack({ chassis: ["gw"] });
  system = await startTestSystem({ ovn: { stack, chassis: ["gw"], bridgeMappings: ["physnet1:br-ext"] } });
  await eventually("chassis healthy with physnet1", async () => {
    const host = await system.prisma.host.findUnique({ where: { id: system.hosts[0]!.id } });
    return host?.chassisHealthy && host.physicalNetworks.includes("physnet1");
  });
}, 120_000);

afterAll(async () => {
  for (const l of listeners) l.kill("SIGKILL");
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

/** An endpoint on the tenant network, routed through the router, answering TCP 7000 with its name. */
async function tenantEndpoint(networkId: string, name: string, ip: string) {
  const portId = (await completed(await system.request("POST", "/v1/ports", { networkId, ip }))).portId;
  const port = (await system.request("GET", `/v1/ports/${portId}`)).body;
  const ns = await plugEndpoint(stack, stack.chassis[0]!, port, name, `${ip}/24`);
  await runCommand("ip", ["-n", ns, "route", "add", "default", "via", "10.66.0.1"]);
  await eventually(`binding of ${name}`, async () => (await portBinding(stack, portId))?.up);
  listeners.push(spawn("ip", ["netns", "exec", ns, "busybox", "nc", "-ll", "-p", "7000", "-e", "/bin/echo", name], { stdio: "ignore" }));
  return { portId, ns };
}

async function whoAnswers(ns: string, ip: string): Promise<string> {
  return runCommand("ip", ["netns", "exec", ns, "busybox", "nc", "-w", "2", ip, "7000"], { input: "", timeoutMs: 10_000 }).then(
    (r) => r.stdout.trim(),
    () => "",
  );
}

test("SNAT takes a tenant endpoint outside; a floating IP reaches it from outside, then moves to another in one transaction", async () => {
  const external = (await completed(await system.request("POST", "/v1/networks", { name: "provider", type: "external", physicalNetwork: "physnet1", cidr: "203.0.113.0/24", dhcp: false }))).networkId;
  const tenant = (await completed(await system.request("POST", "/v1/networks", { name: "tenant", cidr: "10.66.0.0/24" }))).networkId;

  // "Outside": a namespace on the provider bridge, the provider network's gateway 203.0.113.1.
  const chassis = stack.chassis[0]!;
  const outside = await stack.namespace("outside");
  await chassis.vsctl("--may-exist", "add-port", "br-ext", "qx10out", "--", "set", "Interface", "qx10out", "type=internal");
  await eventually("outside tap", async () => chassis.exec("ip", ["link", "show", "qx10out"]).then(() => true, () => false));
  await chassis.exec("ip", ["link", "set", "qx10out", "netns", outside]);
  await runCommand("ip", ["-n", outside, "addr", "add", "203.0.113.1/24", "dev", "qx10out"]);
  await runCommand("ip", ["-n", outside, "link", "set", "qx10out", "up"]);
  listeners.push(spawn("ip", ["netns", "exec", outside, "busybox", "nc", "-ll", "-p", "7000", "-e", "/bin/echo", "outside"], { stdio: "ignore" }));

  const routerId = (await completed(await system.request("POST", "/v1/routers", { name: "edge", externalNetworkId: external }))).routerId;
  await completed(await system.request("POST", `/v1/routers/${routerId}/interfaces`, { networkId: tenant }));
  const router = (await system.request("GET", `/v1/routers/${routerId}`)).body;
  expect(router.gatewayIp).toBe("203.0.113.2");
  expect(router.interfaces.map((i: any) => i.ip)).toEqual(["10.66.0.1"]);

  const a = await tenantEndpoint(tenant, "a", "10.66.0.10");
  const b = await tenantEndpoint(tenant, "b", "10.66.0.11");
  // SNAT: outside answers a tenant endpoint it has no route to.
  expect(await eventually("SNAT to outside", () => pings(a.ns, "203.0.113.1", { count: 1 }))).toBe(true);
  expect(await whoAnswers(a.ns, "203.0.113.1")).toBe("outside");

  // A floating IP for a; outside reaches a through it.
  const fip = await completed(await system.request("POST", "/v1/floating-ips", { networkId: external, portId: a.portId }));
  const fipIp = (await system.request("GET", `/v1/floating-ips/${fip.floatingIpId}`)).body.ip;
  expect(fipIp).toBe("203.0.113.3");
  expect(await eventually("floating IP reaches a", async () => (await whoAnswers(outside, fipIp)) === "a")).toBe(true);

  // Moved to b in one transaction: one dnat_and_snat rule before and after, now b's.
  await completed(await system.request("PATCH", `/v1/floating-ips/${fip.floatingIpId}`, { portId: b.portId }));
  const nat = (await stack.northbound.ownedRows()).filter((r) => r.table === "NAT" && r.externalIds["qx-floating-ip-id"]);
  expect(nat.length).toBe(1);
  expect(await eventually("floating IP reaches b", async () => (await whoAnswers(outside, fipIp)) === "b")).toBe(true);

  // In use: the router and the networks refuse deletion while legs and floating IPs remain.
  const refused = await system.request("DELETE", `/v1/routers/${routerId}`);
  expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: "ROUTER_IN_USE" });

  // A failure at each step of a floating IP move leaves it where it was.
  await expectEachStepFailsCleanly(system, {
    steps: [
      { step: "validate", activity: "loadFloatingIpMove", side: "database" },
      { step: "move-nat", activity: "nbMoveFloatingIp", side: "network" },
    ],
    async start() {
      return (await system.request("PATCH", `/v1/floating-ips/${fip.floatingIpId}`, { portId: a.portId })).body.operationId;
    },
    async expectCleanSlate() {
      const rows = (await stack.northbound.ownedRows()).filter((r) => r.table === "NAT" && r.externalIds["qx-floating-ip-id"]);
      expect(rows.length).toBe(1);
      const [row] = await stack.northbound.select("NAT", [["_uuid", "==", ["uuid", rows[0]!.uuid]]], ["logical_ip"]);
      expect(row!.logical_ip).toBe("10.66.0.11");
      expect((await system.request("GET", `/v1/floating-ips/${fip.floatingIpId}`)).body.portId).toBe(b.portId);
    },
  });

  // Teardown in order, each refusing what is still used, ends with no Northbound row.
  await completed(await system.request("DELETE", `/v1/floating-ips/${fip.floatingIpId}`));
  for (const p of [a, b]) await completed(await system.request("DELETE", `/v1/ports/${p.portId}`));
  await completed(await system.request("DELETE", `/v1/routers/${routerId}/interfaces/${tenant}`));
  await completed(await system.request("DELETE", `/v1/routers/${routerId}`));
  await completed(await system.request("DELETE", `/v1/networks/${tenant}`));
  await completed(await system.request("DELETE", `/v1/networks/${external}`));
  expect(await stack.northbound.ownedRows()).toEqual([]);
});

test("a failure at each step of createRouter leaves no Northbound row and no address taken", async () => {
  const external = (await completed(await system.request("POST", "/v1/networks", { name: "provider2", type: "external", physicalNetwork: "physnet1", cidr: "198.51.100.0/24" }))).networkId;
  const owned = async () => (await stack.northbound.ownedRows()).map((r) => `${r.table} ${r.uuid}`).sort();
  const baseline = await owned();
  await expectEachStepFailsCleanly(system, {
    steps: [
      { step: "validate", activity: "loadRouterChange", side: "database" },
      { step: "write-router", activity: "nbSyncRouters", side: "network" },
    ],
    async start() {
      return (await system.request("POST", "/v1/routers", { name: "doomed", externalNetworkId: external })).body.operationId;
    },
    async expectCleanSlate() {
      expect(await owned()).toEqual(baseline);
      expect(await system.prisma.port.count({ where: { networkId: external } })).toBe(0);
    },
  });
  for (const r of await system.prisma.router.findMany()) {
    const op = await system.waitForOperation((await system.request("DELETE", `/v1/routers/${r.id}`)).body.operationId);
    expect(op.state).toBe("COMPLETED");
    expectNoFailedUndo(op);
  }
  await completed(await system.request("DELETE", `/v1/networks/${external}`));
});
