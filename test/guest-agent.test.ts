import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { XMLParser } from "fast-xml-parser";
import { domainName, GUEST_AGENT_CHANNEL, QUANTIX_METADATA_NS } from "../activities/libvirt/domain-xml";
import { runCommand } from "../common/exec";
import { startTestSystem, type TestHost, type TestSystem } from "./support/system";
import { agentCommand, bootTestGuest, guestShell, pollVm, uploadTestGuestImage } from "./support/test-guest";

/**
 * The test guest (scripts/build-test-guest.sh) booted the way a user boots an installer ISO:
 * uploaded to the image library, a VM made from it with POST /v1/vms, run by the host worker
 * under TCG. Real qemu-ga over the virtio-serial channel every domain now gets.
 */
let system: TestSystem;
let host: TestHost;
let vmId: string;

beforeAll(async () => {
  system = await startTestSystem({ domainType: "qemu", agentStatusIntervalMs: 3_000 });
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

  test("GET /v1/vms/:id shows the agent's status as the host reported it: versions, OS, hostname, the guest's IPs", async () => {
    const vm = await pollVm(system, vmId, (v) => v.guestAgent?.interfaces?.some((i: { name: string; addresses: unknown[] }) => i.name === "eth0" && i.addresses.length > 0));
    expect(vm.guestAgent).toMatchObject({
      connected: true,
      version: { qemuGa: "7.2.22", package: "1.0.0" },
      os: { name: "Quantix Test Guest", version: "1 (Debian kernel, busybox, qemu-ga)", id: "quantix-test-guest", kernelRelease: expect.stringMatching(/-amd64$/) },
      hostname: "tinyga",
      filesystems: "thawed",
    });
    expect(vm.guestAgent.interfaces).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "lo", addresses: expect.arrayContaining([{ type: "ipv4", address: "127.0.0.1", prefix: 8 }]) }),
        expect.objectContaining({ name: "eth0", mac: expect.stringMatching(/^52:54:00:/), addresses: [{ type: "ipv4", address: "10.0.2.15", prefix: 24 }] }),
      ]),
    );
    expect(new Date(vm.guestAgent.since).getTime()).toBeLessThanOrEqual(new Date(vm.guestAgent.observedAt).getTime());
  });
});

describe("a guest's files through its agent", () => {
  const files = (query: string) => `/v1/vms/${vmId}/agent/files${query}`;
  const put = (guestPath: string, body: Buffer) =>
    fetch(`${system.api.url}${files(`/content?path=${encodeURIComponent(guestPath)}`)}`, { method: "PUT", headers: { authorization: "Bearer test-token" }, body });
  const get = (guestPath: string) => fetch(`${system.api.url}${files(`/content?path=${encodeURIComponent(guestPath)}`)}`, { headers: { authorization: "Bearer test-token" } });

  test("a file written is read back whole and listed with its size; over half a MiB it travels in several chunks", async () => {
    const small = Buffer.from("hello from the host\n");
    const big = randomBytes(1300 * 1024);
    expect((await put("/data/hello.txt", small)).status).toBe(201);
    expect((await put("/data/big.bin", big)).status).toBe(201);
    const read = await get("/data/big.bin");
    expect(read.status).toBe(200);
    expect(read.headers.get("content-length")).toBe(String(big.length));
    expect(Buffer.from(await read.arrayBuffer()).equals(big)).toBe(true);
    expect(Buffer.from(await (await get("/data/hello.txt")).arrayBuffer()).toString()).toBe(small.toString());
    const listing = await system.request("GET", files("?path=/data"));
    expect(listing.status).toBe(200);
    expect(listing.body.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "hello.txt", type: "file", sizeBytes: small.length }),
        expect.objectContaining({ name: "big.bin", type: "file", sizeBytes: big.length }),
        expect.objectContaining({ name: "lost+found", type: "directory" }),
      ]),
    );
    // The partial files of the writes are gone: each was renamed into place.
    expect(listing.body.items.filter((i: { name: string }) => i.name.includes("quantix-partial"))).toEqual([]);
    // The guest itself sees what was written.
    expect((await guestShell(vmId, "cat /data/hello.txt")).stdout).toBe(small.toString());
  });

  test("delete removes a file; missing files, directories and relative paths are clear errors", async () => {
    await put("/data/doomed.txt", Buffer.from("x"));
    expect((await system.request("DELETE", files("?path=/data/doomed.txt"))).status).toBe(204);
    expect((await get("/data/doomed.txt")).status).toBe(404);
    expect((await system.request("DELETE", files("?path=/data/doomed.txt"))).body.code).toBe("NOT_FOUND");
    expect((await system.request("GET", files("?path=/data/hello.txt"))).body.code).toBe("CONFLICT");
    expect((await system.request("DELETE", files("?path=/data/lost%2Bfound"))).body.code).toBe("CONFLICT");
    expect((await system.request("GET", files("?path=data"))).body.code).toBe("VALIDATION_FAILED");
    expect((await system.request("GET", files("?path=/no/such/dir"))).status).toBe(404);
  });

  test("paths are the guest's: a file that exists only on the host is not reachable", async () => {
    const hostOnly = path.join(host.poolDir, "host-only-secret.txt");
    writeFileSync(hostOnly, "host data");
    expect((await get(hostOnly)).status).toBe(404);
    expect((await system.request("GET", files(`?path=${encodeURIComponent(host.poolDir)}`))).status).toBe(404);
    expect((await get("/etc/os-release")).status).toBe(200);
    expect(await (await get("/etc/os-release")).text()).toContain("Quantix Test Guest");
  });

  test("reads are bounded: a file over the limit is refused before a byte is sent", async () => {
    system.config.guestFileMaxReadBytes = 1024;
    try {
      const res = await get("/data/big.bin");
      expect(res.status).toBe(413);
      expect(((await res.json()) as { code: string }).code).toBe("CONTENT_TOO_LARGE");
    } finally {
      system.config.guestFileMaxReadBytes = undefined;
    }
  });
});
