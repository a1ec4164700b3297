import { runCommand } from "../common/exec";
import { eventually, pings, plugEndpoint, portBinding, startOvnStack, type OvnStack } from "./support/ovn";
import { startTestSystem, type TestSystem } from "./support/system";

/**
 * Two chassis, each its own host worker with its own OVS (ovsdb-server, ovs-vswitchd on the
 * netdev datapath, ovn-controller) in its own network namespace; they reach each other only over
 * the underlay veth, by Geneve. Endpoints are OVS internal ports moved into namespaces (standing
 * for guests). Host a also maps provider network "vlanphys" to br-vlan, for a VLAN network.
 */
let stack: OvnStack;
let system: TestSystem;

beforeAll(async () => {
  stack = await startOvnStack({ chassis: ["hva", "hvb"] });
  system = await startTestSystem({ hostCount: 2, ovn: { stack, chassis: ["hva", "hvb"], bridgeMappings: ["vlanphys:br-vlan", undefined] } });
  for (const host of system.hosts) await eventually(`${host.id}'s chassis`, async () => (await system.prisma.host.findUnique({ where: { id: host.id } }))?.chassisHealthy);
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

async function port(body: Record<string, unknown>) {
  const { portId } = await completed(await system.request("POST", "/v1/ports", body));
  return (await system.request("GET", `/v1/ports/${portId}`)).body;
}

test("two chassis carry an overlay network over Geneve; a port is claimed only by its requested chassis", async () => {
  const [hostA, hostB] = system.hosts;
  const [hva, hvb] = stack.chassis;
  const networkId = (await completed(await system.request("POST", "/v1/networks", { name: "overlay", cidr: "10.68.0.0/24" }))).networkId;
  const a = await port({ networkId, ip: "10.68.0.10", hostId: hostA!.id });
  const b = await port({ networkId, ip: "10.68.0.20", hostId: hostB!.id });
  const nsA = await plugEndpoint(stack, hva!, a, "ga", "10.68.0.10/24");
  const nsB = await plugEndpoint(stack, hvb!, b, "gb", "10.68.0.20/24");
  expect((await eventually("a bound", async () => ((await portBinding(stack, a.id))?.up ? portBinding(stack, a.id) : null)))!.chassis).toBe(hostA!.id);
  expect((await eventually("b bound", async () => ((await portBinding(stack, b.id))?.up ? portBinding(stack, b.id) : null)))!.chassis).toBe(hostB!.id);
  for (const c of [hva!, hvb!]) {
    const tunnels = await c.vsctl("--bare", "--columns=type", "find", "Interface", "type=geneve");
    expect(tunnels.trim()).toBe("geneve");
  }
  expect(await eventually("ping over Geneve", () => pings(nsA, "10.68.0.20", { count: 1 }))).toBe(true);
  expect(await pings(nsB, "10.68.0.10")).toBe(true);

  // requested-chassis: a port meant for host a, plugged on host b's chassis, is not claimed there.
  const pinned = await port({ networkId, ip: "10.68.0.30", hostId: hostA!.id });
  await plugEndpoint(stack, hvb!, pinned, "gp", "10.68.0.30/24");
  await new Promise((r) => setTimeout(r, 2_000));
  expect((await portBinding(stack, pinned.id))?.chassis ?? null).toBeNull();

  for (const p of [a, b, pinned]) await completed(await system.request("DELETE", `/v1/ports/${p.id}`));
  await completed(await system.request("DELETE", `/v1/networks/${networkId}`));
});

test("a VLAN network reaches its VLAN on the provider bridge, and not another", async () => {
  const hva = stack.chassis[0]!;
  const networkId = (
    await completed(await system.request("POST", "/v1/networks", { name: "vlan100", type: "vlan", physicalNetwork: "vlanphys", vlanTag: 100, cidr: "10.69.0.0/24", dhcp: false }))
  ).networkId;
  // Two hosts on the provider bridge: one on VLAN 100, one on VLAN 200 (access ports, untagged inside).
  for (const [name, tag, ip] of [["qx10v100", "100", "10.69.0.100/24"], ["qx10v200", "200", "10.69.0.200/24"]] as const) {
    const ns = await stack.namespace(name);
    await hva.vsctl("--may-exist", "add-port", "br-vlan", name, `tag=${tag}`, "--", "set", "Interface", name, "type=internal");
    await eventually(`${name} tap`, async () => hva.exec("ip", ["link", "show", name]).then(() => true, () => false));
    await hva.exec("ip", ["link", "set", name, "netns", ns]);
    await runCommand("ip", ["-n", ns, "addr", "add", ip, "dev", name]);
    await runCommand("ip", ["-n", ns, "link", "set", name, "up"]);
  }
  const endpoint = await port({ networkId, ip: "10.69.0.10", hostId: system.hosts[0]!.id });
  const ns = await plugEndpoint(stack, hva, endpoint, "gv", "10.69.0.10/24");
  await eventually("VLAN endpoint bound", async () => (await portBinding(stack, endpoint.id))?.up);
  expect(await eventually("ping on VLAN 100", () => pings(ns, "10.69.0.100", { count: 1 }))).toBe(true);
  expect(await pings(ns, "10.69.0.200")).toBe(false);
  await completed(await system.request("DELETE", `/v1/ports/${endpoint.id}`));
  await completed(await system.request("DELETE", `/v1/networks/${networkId}`));
  expect(await stack.northbound.ownedRows()).toEqual([]);
});
