import { domainName } from "../activities/libvirt/domain-xml";
import { runCommand } from "../common/exec";
import { agentCommand, uploadTestGuestImage, waitForAgent, TEST_GUEST_VM } from "./support/test-guest";
import { eventually, pings, plugEndpoint, portBinding, startOvnStack, type OvnStack } from "./support/ovn";
import { startTestSystem, type TestSystem } from "./support/system";

/**
 * A real Linux guest on a virtual network: the test guest (busybox + qemu-ga, TCG) made with a NIC
 * through POST /v1/vms, plugged by libvirt into the root chassis. At boot it runs udhcpc on its
 * NIC: the lease it gets is OVN's native DHCP answering with the address IPAM chose, as the guest's
 * own agent reports; an endpoint namespace on the same network then reaches it.
 */
let stack: OvnStack;
let system: TestSystem;

beforeAll(async () => {
  stack = await startOvnStack({ chassis: ["root"] });
  system = await startTestSystem({ domainType: "qemu", ovn: { stack, chassis: ["root"] } });
  await eventually("chassis healthy", async () => (await system.prisma.host.findUnique({ where: { id: system.hosts[0]!.id } }))?.chassisHealthy);
}, 300_000);

afterAll(async () => {
  await system?.shutdown();
  await stack?.stop();
});

async function completed(res: { status: number; body: any }) {
  // The problem's body, when it is one, says why.
  expect({ status: res.status, problem: res.status === 202 ? undefined : res.body }).toEqual({ status: 202, problem: undefined });
  const op = await system.waitForOperation(res.body.operationId, undefined, 240_000);
  expect({ state: op.state, error: op.error }).toEqual({ state: "COMPLETED", error: null });
  return res.body;
}

test("a Linux guest with a NIC gets its address from OVN's DHCP and is reached by another endpoint of its network", async () => {
  const imageId = await uploadTestGuestImage(system, system.hosts[0]!);
  const networkId = (await completed(await system.request("POST", "/v1/networks", { name: "guests", cidr: "10.71.0.0/24" }))).networkId;
  const { vmId } = await completed(await system.request("POST", "/v1/vms", { ...TEST_GUEST_VM, name: "guest-1", imageId, nics: [{ networkId }] }));
  const [nic] = (await system.request("GET", `/v1/vms/${vmId}`)).body.nics;
  await eventually("guest NIC bound", async () => (await portBinding(stack, nic.portId))?.up);
  await waitForAgent(vmId);

  // The guest's own view (its agent): eth0 with the leased address, which is the one IPAM chose.
  const leased = await eventually(
    "DHCP lease in the guest",
    async () => {
      const interfaces = await agentCommand<{ name: string; "hardware-address"?: string; "ip-addresses"?: { "ip-address": string }[] }[]>(vmId, "guest-network-get-interfaces");
      const eth = interfaces.find((i) => i["hardware-address"]?.toLowerCase() === nic.mac);
      return eth?.["ip-addresses"]?.map((a) => a["ip-address"]).find((ip) => ip.startsWith("10.71."));
    },
    120_000,
  );
  expect(leased).toBe(nic.ip);

  const peer = (await completed(await system.request("POST", "/v1/ports", { networkId, ip: "10.71.0.200" }))).portId;
  const peerPort = (await system.request("GET", `/v1/ports/${peer}`)).body;
  const ns = await plugEndpoint(stack, stack.chassis[0]!, peerPort, "peer", "10.71.0.200/24");
  await eventually("peer bound", async () => (await portBinding(stack, peer))?.up);
  expect(await eventually("the guest answers ping", () => pings(ns, nic.ip, { count: 1 }), 30_000)).toBe(true);
  expect(await runCommand("virsh", ["-c", "qemu:///system", "domstate", domainName(vmId)]).then((r) => r.stdout.trim())).toBe("running");

  await completed(await system.request("DELETE", `/v1/vms/${vmId}`));
  await completed(await system.request("DELETE", `/v1/ports/${peer}`));
  await completed(await system.request("DELETE", `/v1/networks/${networkId}`));
  expect(await stack.northbound.ownedRows()).toEqual([]);
}, 600_000);
