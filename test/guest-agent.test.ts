import { writeFileSync } from "node:fs";
import path from "node:path";
import { XMLParser } from "fast-xml-parser";
import { domainName, GUEST_AGENT_CHANNEL, QUANTIX_METADATA_NS } from "../activities/libvirt/domain-xml";
import { runCommand } from "../common/exec";
import { startTestSystem, type TestHost, type TestSystem } from "./support/system";
import { agentCommand, bootTestGuest, uploadTestGuestImage } from "./support/test-guest";

/**
 * The test guest (scripts/build-test-guest.sh) booted the way a user boots an installer ISO:
 * uploaded to the image library, a VM made from it with POST /v1/vms, run by the host worker
 * under TCG. Real qemu-ga over the virtio-serial channel every domain now gets.
 */
let system: TestSystem;
let host: TestHost;
let vmId: string;

beforeAll(async () => {
  system = await startTestSystem({ domainType: "qemu" });
  host = system.hosts[0]!;
  const imageId = await uploadTestGuestImage(system, host);
  vmId = await bootTestGuest(system, imageId, "agent-guest");
}, 400_000);

afterAll(async () => {
  await system?.shutdown();
});

const virsh = async (...args: string[]) => (await runCommand("virsh", ["-c", "qemu:///system", "-q", ...args])).stdout;

describe("the test guest on real libvirt, TCG and qemu-ga", () => {
  test("boots from its ISO through POST /v1/vms; the domain has the agent channel and names its installation", async () => {
    const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(await virsh("dumpxml", domainName(vmId)));
    expect(xml.domain.type).toBe("qemu");
    const channels = [xml.domain.devices.channel].flat();
    expect(channels).toEqual([expect.objectContaining({ type: "unix", target: expect.objectContaining({ type: "virtio", name: GUEST_AGENT_CHANNEL, state: "connected" }) })]);
    expect(xml.domain.metadata["quantix:domain"]).toMatchObject({ "xmlns:quantix": QUANTIX_METADATA_NS, installation: system.config.controlPlaneQueue });
    expect(await agentCommand(vmId, "guest-info")).toMatchObject({ version: "7.2.22" });
  });

  test("the guest has a real filesystem to freeze: its virtio disk, formatted as ext4 at /data", async () => {
    const fsinfo = await agentCommand<{ mountpoint: string; type: string; disk: { dev: string }[] }[]>(vmId, "guest-get-fsinfo");
    expect(fsinfo).toEqual([expect.objectContaining({ mountpoint: "/data", type: "ext4", disk: [expect.objectContaining({ dev: "/dev/vda" })] })]);
  });

  test("a virtio NIC plugged into the running guest gets a DHCP lease (udhcpc), reported by the agent", async () => {
    // QEMU's user-mode network answers DHCP itself (10.0.2.15): nothing leaves this machine.
    const nic = path.join(system.hosts[0]!.poolDir, "..", "user-nic.xml");
    writeFileSync(nic, "<interface type='user'><model type='virtio'/></interface>");
    await virsh("attach-device", domainName(vmId), nic, "--live");
    const deadline = Date.now() + 60_000;
    let eth0: { "ip-addresses"?: { "ip-address": string }[] } | undefined;
    while (Date.now() < deadline) {
      const interfaces = await agentCommand<{ name: string; "ip-addresses"?: { "ip-address": string }[] }[]>(vmId, "guest-network-get-interfaces");
      eth0 = interfaces.find((i) => i.name === "eth0");
      if (eth0?.["ip-addresses"]?.length) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(eth0?.["ip-addresses"]?.map((a) => a["ip-address"])).toEqual(["10.0.2.15"]);
  });
});
