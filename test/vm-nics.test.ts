import { XMLParser } from "fast-xml-parser";
import { domainName } from "../activities/libvirt/domain-xml";
import { runCommand } from "../common/exec";
import { expectCleanSlate, expectNoFailedUndo } from "./support/assertions";
import { expectEachStepFailsCleanly, withFailingActivity } from "./support/each-step-fails";
import { eventually, pings, plugEndpoint, portBinding, startOvnStack, type OvnStack } from "./support/ovn";
import { startTestSystem, type TestSystem } from "./support/system";

/**
 * VMs with NICs on a real OVN stack: real KVM guests (no OS: SeaBIOS runs) defined by libvirt
 * with <interface type='bridge'> on br-int, plugged by libvirt itself (openvswitch virtualport)
 * into the root chassis, which the guests' host worker configured. What a guest without an OS
 * cannot show (answering traffic) is shown by an endpoint namespace on the same network.
 * Host a has no OVN at all; host b is the root chassis: placement must send VMs with NICs to b.
 */
let stack: OvnStack;
let system: TestSystem;
let networkId: string;
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@_", isArray: (name) => name === "interface" });

beforeAll(async () => {
  stack = await startOvnStack({ chassis: ["root"] });
  system = await startTestSystem({ hostCount: 2, ovn: { stack, chassis: ["", "root"] } });
  await eventually("host b's chassis healthy", async () => (await system.prisma.host.findUnique({ where: { id: system.hosts[1]!.id } }))?.chassisHealthy);
  networkId = (await completed(await system.request("POST", "/v1/networks", { name: "vms", cidr: "10.64.0.0/24" }))).networkId;
}, 180_000);

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

async function domainInterfaces(vmId: string): Promise<{ mac: string; bridge: string; interfaceId: string }[]> {
  const xml = (await runCommand("virsh", ["-c", "qemu:///system", "dumpxml", domainName(vmId)])).stdout;
  const doc = parser.parse(xml) as { domain: { devices: { interface?: any[] } } };
  return (doc.domain.devices.interface ?? []).map((i) => ({
    mac: i.mac["@_address"],
    bridge: i.source["@_bridge"],
    interfaceId: i.virtualport.parameters["@_interfaceid"],
  }));
}

const vmBody = (name: string, nics: unknown[]) => ({ name, vcpus: 1, memoryMiB: 64, diskSizeGiB: 1, nics });

async function nbSwitchPorts(vmId?: string) {
  return (await stack.northbound.ownedRows()).filter((r) => r.table === "Logical_Switch_Port" && (!vmId || r.externalIds["qx-vm-id"] === vmId));
}

test("a VM with NICs: placed on the host with a chassis, plugged into br-int by libvirt, bound by its host's chassis, named in DNS; hot-plug; delete removes its ports", async () => {
  const hostB = system.hosts[1]!;
  const created = await completed(await system.request("POST", "/v1/vms", vmBody("web-1", [{ networkId }, { networkId, ip: "10.64.0.50" }])));
  const vm = (await system.request("GET", `/v1/vms/${created.vmId}`)).body;
  expect(vm.hostId).toBe(hostB.id);
  expect(vm.nics.map((n: any) => n.ip)).toEqual(["10.64.0.2", "10.64.0.50"]);

  expect(await domainInterfaces(vm.id)).toEqual(vm.nics.map((n: any) => ({ mac: n.mac, bridge: "br-int", interfaceId: n.portId })));
  for (const nic of vm.nics) {
    const binding = await eventually(`binding of ${nic.portId}`, async () => ((await portBinding(stack, nic.portId))?.up ? portBinding(stack, nic.portId) : null));
    expect(binding.chassis).toBe(hostB.id);
    const [lsp] = await stack.northbound.select("Logical_Switch_Port", [["name", "==", nic.portId]], ["options", "port_security"]);
    expect(lsp!.options).toEqual(["map", [["requested-chassis", hostB.id]]]);
    expect(lsp!.port_security).toBe(`${nic.mac} ${nic.ip}`);
  }

  // A VM without NICs may go to host a, which joins no network.
  const plain = await completed(await system.request("POST", "/v1/vms", vmBody("plain-1", [])));
  expect((await system.request("GET", `/v1/vms/${plain.vmId}`)).body.hostId).toBe(system.hosts[0]!.id);

  // OVN answers DNS for the VM's name on its network (asked from an endpoint namespace there).
  const peer = (await completed(await system.request("POST", "/v1/ports", { networkId, ip: "10.64.0.77" }))).portId;
  const peerPort = (await system.request("GET", `/v1/ports/${peer}`)).body;
  const ns = await plugEndpoint(stack, stack.chassis[0]!, peerPort, "dns", "10.64.0.77/24");
  await eventually("endpoint bound", async () => (await portBinding(stack, peer))?.up);
  expect(await pings(ns, "10.64.0.2", { count: 1 })).toBe(false); // the guest has no OS: nothing answers
  const lookup = await runCommand("ip", ["netns", "exec", ns, "busybox", "nslookup", "web-1", "10.64.0.2"], { timeoutMs: 20_000 });
  expect(lookup.stdout).toMatch(/Name:\s+web-1\s+Address[^\n]*10\.64\.0\.2\b/);

  // Hot-plug a third NIC into the running guest.
  const attached = await completed(await system.request("POST", `/v1/vms/${vm.id}/nics`, { networkId }));
  await eventually("hot-plugged NIC bound", async () => (await portBinding(stack, attached.portId))?.chassis === hostB.id);
  expect((await domainInterfaces(vm.id)).map((i) => i.interfaceId)).toEqual([...vm.nics.map((n: any) => n.portId), attached.portId]);

  // A guest without an OS never releases a PCI NIC: unplugging is shown on the stopped VM.
  await completed(await system.request("POST", `/v1/vms/${vm.id}/actions/force-stop`));
  await completed(await system.request("DELETE", `/v1/vms/${vm.id}/nics/${attached.portId}`));
  expect((await domainInterfaces(vm.id)).map((i) => i.interfaceId)).toEqual(vm.nics.map((n: any) => n.portId));
  expect((await nbSwitchPorts(vm.id)).length).toBe(2);
  expect(await system.prisma.port.count({ where: { id: attached.portId } })).toBe(0);

  await completed(await system.request("DELETE", `/v1/vms/${vm.id}`));
  await completed(await system.request("DELETE", `/v1/vms/${plain.vmId}`));
  expect(await nbSwitchPorts(vm.id)).toEqual([]);
  expect(await system.prisma.port.count({ where: { vmId: vm.id } })).toBe(0);
  await completed(await system.request("DELETE", `/v1/ports/${peer}`));
});

test("a failure at each step of createVm with NICs leaves no switch port, domain or disk", async () => {
  let vmId = "";
  let bootVolumeId = "";
  const host = system.hosts[1]!;
  await expectEachStepFailsCleanly(
    system,
    {
      steps: [
        { step: "validate", activity: "loadVmPorts", side: "database" },
        { step: "place", activity: "placeVm", side: "database" },
        { step: "create-disk", activity: "createDisk", side: "host" },
        { step: "create-ports", activity: "nbCreatePorts", side: "network" },
        { step: "define-domain", activity: "defineDomain", side: "host" },
        { step: "start-domain", activity: "startDomain", side: "host" },
        { step: "wait-running", activity: "waitForDomainRunning", side: "host" },
      ],
      async start() {
        const res = await system.request("POST", "/v1/vms", vmBody("doomed", [{ networkId }, { networkId }]));
        vmId = res.body.vmId;
        bootVolumeId = (await system.prisma.vm.findUniqueOrThrow({ where: { id: vmId } })).bootVolumeId;
        return res.body.operationId;
      },
      async expectCleanSlate() {
        await expectCleanSlate(system, vmId, bootVolumeId);
        expect(await nbSwitchPorts()).toEqual([]);
        expect(await system.prisma.port.count()).toBe(0);
      },
    },
    host,
  );
}, 600_000);

test("a failure at each step of attachNic leaves the VM as it was; a failed detach finishes when repeated", async () => {
  const vm = await completed(await system.request("POST", "/v1/vms", vmBody("nic-sweep", [{ networkId }])));
  const host = system.hosts[1]!;
  // Stopped: the undo of a hot-plug waits for the guest to release the NIC, which a guest without an OS never does.
  await completed(await system.request("POST", `/v1/vms/${vm.vmId}/actions/force-stop`));
  const before = await domainInterfaces(vm.vmId);
  await expectEachStepFailsCleanly(
    system,
    {
      steps: [
        { step: "validate", activity: "loadPorts", side: "database" },
        { step: "create-port", activity: "nbCreatePorts", side: "network" },
        { step: "plug-nic", activity: "plugNic", side: "host" },
      ],
      async start() {
        return (await system.request("POST", `/v1/vms/${vm.vmId}/nics`, { networkId })).body.operationId;
      },
      async expectCleanSlate() {
        expect(await domainInterfaces(vm.vmId)).toEqual(before);
        expect((await nbSwitchPorts()).length).toBe(1);
        expect(await system.prisma.port.count({ where: { vmId: vm.vmId } })).toBe(1);
      },
    },
    host,
  );

  const attached = await completed(await system.request("POST", `/v1/vms/${vm.vmId}/nics`, { networkId }));
  for (const [activity, side] of [["unplugNic", "host"], ["nbDeletePorts", "network"]] as const) {
    const op = await withFailingActivity(system, { activity, side }, async () => system.waitForOperation((await system.request("DELETE", `/v1/vms/${vm.vmId}/nics/${attached.portId}`)).body.operationId), host);
    expect({ activity, state: op.state }).toEqual({ activity, state: "FAILED" });
    expectNoFailedUndo(op);
  }
  await completed(await system.request("DELETE", `/v1/vms/${vm.vmId}/nics/${attached.portId}`));
  expect(await domainInterfaces(vm.vmId)).toEqual(before);
  expect((await nbSwitchPorts()).length).toBe(1);
  await completed(await system.request("DELETE", `/v1/vms/${vm.vmId}`));
  expect(await nbSwitchPorts()).toEqual([]);
}, 600_000);
