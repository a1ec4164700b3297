import fs from "node:fs/promises";
import path from "node:path";
import { runCommand } from "../common/exec";
import { startTestSystem, type TestSystem } from "./support/system";
import { completed, domainDisks, poolFiles, qemuImg } from "./support/volumes";

/**
 * The volume lifecycle through the API on an NFS pool served by nfs-ganesha (scripts/services/nfs.sh)
 * and reached without a mount, as these hosts must (qemu's and qemu-img's libnfs: nfs:// URLs),
 * hot-plugged into a running KVM guest as a network disk. The real system is read through the
 * server (qemu-img on nfs:// URLs, libvirt's XML); only the final "nothing left" looks at the export.
 */
const GiB = 1024 ** 3;
const repoRoot = path.resolve(__dirname, "..");
const serverDir = path.join(repoRoot, ".data", `test-nfs-volumes-${process.pid}`);
const exportDir = path.join(serverDir, "export");
const nfsUrl = (volumeId: string) => `nfs://127.0.0.1${exportDir}/${volumeId}.qcow2`;

async function nfsService(action: "start" | "stop"): Promise<void> {
  await runCommand("bash", [path.join(repoRoot, "scripts/services/nfs.sh"), action], { env: { ...process.env, QX_NFS_DIR: serverDir } });
}

let system: TestSystem;
let poolId: string;
let vmId: string;

beforeAll(async () => {
  await nfsService("start");
  system = await startTestSystem();
  const pool = await system.request("POST", "/v1/storage/pools", {
    name: "nfs-ganesha",
    kind: "nfs",
    config: { server: "127.0.0.1", exportPath: exportDir },
    hostIds: [system.hosts[0]!.id],
  });
  await completed(system, pool);
  poolId = pool.body.poolId;
  const vm = await system.request("POST", "/v1/vms", { name: "nfs-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1, poolId: system.hosts[0]!.poolId });
  await completed(system, vm);
  vmId = vm.body.vmId;
}, 180_000);

afterAll(async () => {
  await system?.shutdown();
  await nfsService("stop");
  await fs.rm(serverDir, { recursive: true, force: true });
});

test("create, attach to a running guest, resize online, detach, linked and full clone, snapshot, delete", async () => {
  const pool = (await system.request("GET", `/v1/storage/pools/${poolId}`)).body;
  expect(pool.status).toMatchObject({ health: "healthy", hostsHealthy: 1 });

  const created = await system.request("POST", "/v1/volumes", { name: "nfs-data", poolId, sizeGiB: 1 });
  await completed(system, created);
  const volumeId = created.body.volumeId;
  expect(await qemuImg("info", "-U", nfsUrl(volumeId))).toMatchObject({ format: "qcow2", "virtual-size": GiB });

  await completed(system, await system.request("POST", `/v1/volumes/${volumeId}/attach`, { vmId }));
  const xml = (await runCommand("virsh", ["-c", "qemu:///system", "dumpxml", `qx-${vmId}`])).stdout;
  expect(xml).toMatch(new RegExp(`<disk type="network" device="disk">[\\s\\S]*?<source protocol="nfs" name="${exportDir}/${volumeId}.qcow2"[\\s\\S]*?<target dev="sda" bus="scsi"/>`.replace(/"/g, "'")));
  expect(Object.keys(await domainDisks(vmId))).toEqual(["vda", "sda"]);

  await completed(system, await system.request("POST", `/v1/volumes/${volumeId}/resize`, { sizeGiB: 2 }));
  expect((await qemuImg("info", "-U", nfsUrl(volumeId)))["virtual-size"]).toBe(2 * GiB);

  await completed(system, await system.request("POST", `/v1/volumes/${volumeId}/detach`));
  expect(Object.keys(await domainDisks(vmId))).toEqual(["vda"]);

  const linked = await system.request("POST", `/v1/volumes/${volumeId}/clone`, { name: "nfs-linked", mode: "linked" });
  await completed(system, linked);
  expect(await qemuImg("info", "-U", nfsUrl(linked.body.volumeId))).toMatchObject({ "full-backing-filename": nfsUrl(volumeId) });

  // Through the server, as every client does: ganesha caches attributes, so writes behind its back go unseen.
  await runCommand("qemu-io", ["-f", "qcow2", "-c", "write -P 0x33 0 1M", nfsUrl(linked.body.volumeId)]);
  const full = await system.request("POST", `/v1/volumes/${linked.body.volumeId}/clone`, { name: "nfs-full", mode: "full" });
  await completed(system, full);
  expect((await qemuImg("info", "-U", nfsUrl(full.body.volumeId)))["backing-filename"]).toBeUndefined();
  await runCommand("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", nfsUrl(linked.body.volumeId), nfsUrl(full.body.volumeId)]);

  await completed(system, await system.request("POST", `/v1/volumes/${full.body.volumeId}/snapshots`, { name: "s1" }));
  expect((await qemuImg("info", "-U", nfsUrl(full.body.volumeId))).snapshots.map((s: { name: string }) => s.name)).toEqual(["s1"]);

  const files = await system.request("GET", `/v1/storage/pools/${poolId}/files?path=`);
  expect(files.body.items.map((e: { type: string }) => e.type)).toEqual(["qcow2", "qcow2", "qcow2"]);
  expect((await system.request("GET", `/v1/storage/pools/${poolId}/files?path=..`)).status).toBe(400);

  for (const id of [full.body.volumeId, linked.body.volumeId, volumeId]) await completed(system, await system.request("DELETE", `/v1/volumes/${id}`));
  expect(await poolFiles(exportDir)).toEqual([]);
});
