import fs from "node:fs/promises";
import path from "node:path";
import { runCommand } from "../common/exec";
import { startTestSystem, type TestSystem } from "./support/system";
import { sweepEveryStep } from "./support/sweep";
import { cloneVolumeScenario, createVolumeScenario, deleteVolumeScenario } from "./support/volume-sweeps";
import { completed, domainDisks, poolFiles, qemuImg } from "./support/volumes";

/**
 * Storage pools and volumes through the API on real Temporal, PostgreSQL, qemu-img and KVM: a
 * directory pool made through the API, volumes hot-plugged into a running guest, and every volume
 * workflow failed at each of its steps.
 */
const GiB = 1024 ** 3;
const SMALL_VM = { name: "stor-vm", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1 };

let system: TestSystem;
let poolId: string;
let poolDir: string;
let vmId: string;

beforeAll(async () => {
  // Reports every second, stale only after a minute: the failure tests below restart host workers
  // (and their reporters), which must not make the pool look stale on a loaded machine.
  // test/pool-staleness.test.ts tests staleness itself with a short window.
  system = await startTestSystem({ poolReportIntervalMs: 1_000, poolStaleAfterMs: 60_000 });
  poolDir = path.join(path.dirname(system.hosts[0]!.poolDir), "api-pool");
});

afterAll(async () => {
  await system?.shutdown();
});

const host = () => system.hosts[0]!;
const volumeFile = (volumeId: string) => path.join(poolDir, `${volumeId}.qcow2`);

async function createVolume(name: string, sizeGiB = 1): Promise<string> {
  const res = await system.request("POST", "/v1/volumes", { name, poolId, sizeGiB });
  await completed(system, res);
  return res.body.volumeId;
}

async function volumeRows(): Promise<{ id: string; state: string }[]> {
  return system.prisma.volume.findMany({ where: { poolId }, select: { id: true, state: true }, orderBy: { id: "asc" } });
}

describe("pools", () => {
  test("POST /v1/storage/pools initialises a directory pool on its host and reports it healthy", async () => {
    const res = await system.request("POST", "/v1/storage/pools", { name: "api-dir", kind: "dir", config: { path: poolDir }, hostIds: [host().id] });
    const op = await completed(system, res);
    poolId = res.body.poolId;
    expect(op.steps.map((s: { name: string }) => s.name)).toEqual(["load", `init ${host().id}`, "record"]);
    expect((await fs.stat(poolDir)).isDirectory()).toBe(true);
    const pool = (await system.request("GET", `/v1/storage/pools/${poolId}`)).body;
    expect(pool).toMatchObject({ kind: "dir", config: { path: poolDir }, status: { health: "healthy", hostsHealthy: 1, hostsAssigned: 1 } });
    expect(pool.hosts).toEqual([expect.objectContaining({ hostId: host().id, health: "healthy", stale: false })]);
    expect(pool.status.capacityBytes).toBeGreaterThan(0);
  });

  test("secrets are accepted on create and never shown: not in the pool, the list or the operation", async () => {
    const key = "QVFEeWt4eGtBQUFBQUJBQXRlc3RrZXl0ZXN0a2V5dGVzdA==";
    const res = await system.request("POST", "/v1/storage/pools", {
      name: "ceph-nowhere",
      kind: "rbd",
      config: { pool: "rbd", monitors: ["127.0.0.1:6789"], user: "qx" },
      secrets: { key },
    });
    await completed(system, res);
    const shown = [
      await system.request("GET", `/v1/storage/pools/${res.body.poolId}`),
      await system.request("GET", "/v1/storage/pools"),
      await system.request("GET", `/v1/operations/${res.body.operationId}`),
      await system.request("PATCH", `/v1/storage/pools/${res.body.poolId}`, { name: "ceph-renamed" }),
    ];
    for (const r of shown) expect(JSON.stringify(r.body)).not.toContain(key);
    expect(shown[3]!.body).toMatchObject({ name: "ceph-renamed", kind: "rbd" });
    expect(await system.prisma.storagePoolSecret.findUnique({ where: { poolId: res.body.poolId } })).toMatchObject({ values: { key } });
    await completed(system, await system.request("DELETE", `/v1/storage/pools/${res.body.poolId}`));
    expect((await system.request("GET", `/v1/storage/pools/${res.body.poolId}`)).status).toBe(404);
  });

  test("invalid configurations are refused with problem+json", async () => {
    const bad = await system.request("POST", "/v1/storage/pools", { name: "x", kind: "nfs", config: { server: "a b", exportPath: "rel" } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("application/problem+json");
    expect((await system.request("POST", "/v1/storage/pools", { name: "api-dir", kind: "dir", config: { path: "/tmp/x" } })).status).toBe(409);
  });
});

describe("volumes on a directory pool, hot-plugged into a running KVM guest", () => {
  let volumeId: string;
  let linkedId: string;
  let fullId: string;

  beforeAll(async () => {
    const res = await system.request("POST", "/v1/vms", { ...SMALL_VM, poolId: host().poolId });
    await completed(system, res);
    vmId = res.body.vmId;
    expect(await system.domainState(vmId)).toBe("running");
  });

  test("create: a qcow2 of the requested size, the volume READY", async () => {
    volumeId = await createVolume("data-1");
    expect(await qemuImg("info", "-U", volumeFile(volumeId))).toMatchObject({ format: "qcow2", "virtual-size": GiB });
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body).toMatchObject({ state: "READY", sizeBytes: GiB, hostId: host().id, attachment: null });
  });

  test("attach: hot-plugged at sda, live and in the definition", async () => {
    await completed(system, await system.request("POST", `/v1/volumes/${volumeId}/attach`, { vmId }));
    expect((await domainDisks(vmId, "live")).sda).toBe(volumeFile(volumeId));
    expect((await domainDisks(vmId, "config")).sda).toBe(volumeFile(volumeId));
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body.attachment).toEqual({ vmId, targetDev: "sda", boot: false });
  });

  test("an attached volume cannot be deleted, cloned or snapshotted: 409", async () => {
    for (const [method, url, body] of [
      ["DELETE", `/v1/volumes/${volumeId}`, undefined],
      ["POST", `/v1/volumes/${volumeId}/clone`, { name: "c", mode: "full" }],
      ["POST", `/v1/volumes/${volumeId}/snapshots`, { name: "s1" }],
    ] as const) {
      const res = await system.request(method, url, body);
      expect({ url, status: res.status, code: res.body.code }).toEqual({ url, status: 409, code: "VOLUME_IN_USE" });
    }
  });

  test("resize while attached grows the disk the running guest holds (virsh blockresize)", async () => {
    await completed(system, await system.request("POST", `/v1/volumes/${volumeId}/resize`, { sizeGiB: 2 }));
    expect((await qemuImg("info", "-U", volumeFile(volumeId)))["virtual-size"]).toBe(2 * GiB);
    const blk = (await runCommand("virsh", ["-c", "qemu:///system", "domblkinfo", `qx-${vmId}`, "sda"])).stdout;
    expect(blk).toMatch(new RegExp(`Capacity:\\s+${2 * GiB}`));
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body.sizeBytes).toBe(2 * GiB);
    expect((await system.request("POST", `/v1/volumes/${volumeId}/resize`, { sizeGiB: 1 })).status).toBe(400);
  });

  test("detach: gone from the guest and its definition", async () => {
    await completed(system, await system.request("POST", `/v1/volumes/${volumeId}/detach`));
    expect(await domainDisks(vmId, "live")).toEqual({ vda: expect.any(String) });
    expect(await domainDisks(vmId, "config")).toEqual({ vda: expect.any(String) });
    expect((await system.request("GET", `/v1/volumes/${volumeId}`)).body.attachment).toBeNull();
  });

  test("linked clone: a qcow2 child of the volume, which then refuses to change", async () => {
    const res = await system.request("POST", `/v1/volumes/${volumeId}/clone`, { name: "linked", mode: "linked" });
    await completed(system, res);
    linkedId = res.body.volumeId;
    expect(await qemuImg("info", "-U", volumeFile(linkedId))).toMatchObject({ "virtual-size": 2 * GiB, "full-backing-filename": volumeFile(volumeId) });
    expect((await system.request("GET", `/v1/volumes/${linkedId}`)).body).toMatchObject({ state: "READY", backingVolumeId: volumeId });
    for (const [url, body] of [
      [`/v1/volumes/${volumeId}/attach`, { vmId }],
      [`/v1/volumes/${volumeId}/resize`, { sizeGiB: 3 }],
    ] as const) {
      expect((await system.request("POST", url, body)).status).toBe(409);
    }
    expect((await system.request("DELETE", `/v1/volumes/${volumeId}`)).status).toBe(409);
  });

  test("full clone: an independent copy with the same content", async () => {
    await runCommand("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 1M 1M", volumeFile(linkedId)]);
    const res = await system.request("POST", `/v1/volumes/${linkedId}/clone`, { name: "full", mode: "full" });
    await completed(system, res);
    fullId = res.body.volumeId;
    const info = await qemuImg("info", "-U", volumeFile(fullId));
    expect(info).toMatchObject({ format: "qcow2", "virtual-size": 2 * GiB });
    expect(info["backing-filename"]).toBeUndefined();
    await runCommand("qemu-img", ["compare", "-f", "qcow2", "-F", "qcow2", volumeFile(linkedId), volumeFile(fullId)]);
  });

  test("snapshot create, list, revert and delete act on the qcow2's internal snapshots", async () => {
    await completed(system, await system.request("POST", `/v1/volumes/${fullId}/snapshots`, { name: "before" }));
    const snapshotNames = async () => ((await qemuImg("info", "-U", volumeFile(fullId))).snapshots ?? []).map((s: { name: string }) => s.name);
    expect(await snapshotNames()).toEqual(["before"]);
    expect((await system.request("GET", `/v1/volumes/${fullId}/snapshots`)).body.items).toEqual([expect.objectContaining({ name: "before" })]);

    await runCommand("qemu-io", ["-f", "qcow2", "-c", "write -P 0x11 1M 1M", volumeFile(fullId)]);
    await completed(system, await system.request("POST", `/v1/volumes/${fullId}/snapshots/before/revert`));
    await runCommand("qemu-io", ["-f", "qcow2", "-c", "read -P 0x5a 1M 1M", volumeFile(fullId)]);

    await completed(system, await system.request("DELETE", `/v1/volumes/${fullId}/snapshots/before`));
    expect(await snapshotNames()).toEqual([]);
    expect((await system.request("GET", `/v1/volumes/${fullId}/snapshots`)).body.items).toEqual([]);
  });

  test("delete: clones first, then the base; nothing left in the pool", async () => {
    for (const id of [fullId, linkedId, volumeId]) await completed(system, await system.request("DELETE", `/v1/volumes/${id}`));
    expect(await poolFiles(poolDir)).toEqual([]);
    expect(await volumeRows()).toEqual([]);
  });
});

describe("file browser", () => {
  beforeAll(async () => {
    await fs.mkdir(path.join(poolDir, "isos", "sub"), { recursive: true });
    const iso = Buffer.alloc(0x8800);
    iso.write("CD001", 0x8001, "latin1");
    await fs.writeFile(path.join(poolDir, "isos", "installer.bin"), iso);
    await runCommand("qemu-img", ["create", "-q", "-f", "qcow2", path.join(poolDir, "isos", "cloud.iso"), "16M"]);
    await fs.symlink("/etc", path.join(poolDir, "isos", "escape"));
    await fs.symlink("/etc", path.join(poolDir, "etc-link"));
  });

  test("lists names, types by content, sizes and times; symlinks out of the pool are not listed", async () => {
    const res = await system.request("GET", `/v1/storage/pools/${poolId}/files?path=isos`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((e: { name: string; type: string }) => [e.name, e.type])).toEqual([
      ["cloud.iso", "qcow2"],
      ["installer.bin", "iso"],
      ["sub", "directory"],
    ]);
    expect(res.body.items[1]).toMatchObject({ sizeBytes: 0x8800, modifiedAt: expect.any(String) });
    expect((await system.request("GET", `/v1/storage/pools/${poolId}/files`)).body.items.map((e: { name: string }) => e.name)).toEqual(["isos"]);
  });

  test.each([
    ["..", ".."],
    ["parent of a subdirectory", "isos/../.."],
    ["encoded ..", "..%2F..%2Fetc"],
    ["double-encoded ..", "%252e%252e%252fetc"],
    ["absolute", "%2Fetc"],
    ["backslash", "..%5C..%5Cetc"],
    // A NUL is refused before any path check, as in every string the API takes (api/text-hygiene.ts).
    ["NUL byte", "isos%00", "VALIDATION_FAILED"],
    ["symlink out of the pool", "etc-link"],
    ["symlink out below a directory", "isos/escape"],
  ])("%s is refused with 400 problem+json, never a listing", async (_what, query, code = "INVALID_PATH") => {
    const res = await system.request("GET", `/v1/storage/pools/${poolId}/files?path=${query}`);
    expect({ status: res.status, code: res.body.code, items: res.body.items }).toEqual({ status: 400, code, items: undefined });
    expect(res.headers.get("content-type")).toContain("application/problem+json");
  });

  afterAll(async () => {
    for (const name of ["isos", "etc-link"]) await fs.rm(path.join(poolDir, name), { recursive: true, force: true });
  });
});

describe("failure sweep of every volume and pool workflow (each step before/after its work and once; failing undos)", () => {
  /** Nothing of the failed operation: only `expected` volume files and READY rows, and the guest's boot disk alone. */
  const cleanSlate = async (expected: string[]) => {
    expect(await poolFiles(poolDir)).toEqual(expected.map((id) => `${id}.qcow2`).sort());
    expect((await volumeRows()).map((v) => [v.id, v.state])).toEqual([...expected].sort().map((id) => [id, "READY"]));
    expect(Object.keys(await domainDisks(vmId, "live"))).toEqual(["vda"]);
    expect(Object.keys(await domainDisks(vmId, "config"))).toEqual(["vda"]);
  };
  const target = { system: undefined as unknown as TestSystem, poolId: () => poolId, cleanSlate };
  beforeAll(() => {
    target.system = system;
  });

  test("createVolume", async () => {
    const report = await sweepEveryStep(system, createVolumeScenario(target));
    expect(report.undos).toEqual(["create"]);
  }, 300_000);

  test("cloneVolume, linked and full", async () => {
    const source = await createVolume("clone-source");
    for (const mode of ["linked", "full"] as const) {
      const report = await sweepEveryStep(system, cloneVolumeScenario(target, () => source, mode));
      expect(report.undos).toEqual(["clone"]);
    }
    await completed(system, await system.request("DELETE", `/v1/volumes/${source}`));
  }, 300_000);

  test("deleteVolume recovers forward", async () => {
    await sweepEveryStep(system, deleteVolumeScenario(target));
  }, 300_000);

  test("attachVolume: a failed detach undo leaves the volume attached in the record, and a detach finishes it", async () => {
    const volume = await createVolume("attach-me");
    const detach = async () => completed(system, await system.request("POST", `/v1/volumes/${volume}/detach`));
    const report = await sweepEveryStep(system, {
      workflowType: "attachVolume",
      start: async () => (await system.request("POST", `/v1/volumes/${volume}/attach`, { vmId })).body.operationId,
      async afterSuccess() {
        expect(Object.keys(await domainDisks(vmId, "live"))).toEqual(["vda", "sda"]);
        await detach();
        await cleanSlate([volume]);
      },
      async expectCleanSlate() {
        await cleanSlate([volume]);
        expect((await system.request("GET", `/v1/volumes/${volume}`)).body.attachment).toBeNull();
      },
      async finishCleanup(_op, undoStep) {
        // Whatever undo failed, the record still says attached (the disk may still be plugged in).
        expect((await system.request("GET", `/v1/volumes/${volume}`)).body.attachment).toMatchObject({ vmId, targetDev: "sda" });
        if (undoStep === "attach") expect(Object.keys(await domainDisks(vmId, "config"))).toEqual(["vda", "sda"]);
        await detach();
      },
    });
    expect(report.undos).toEqual(["attach", "reserve"]);
    await completed(system, await system.request("DELETE", `/v1/volumes/${volume}`));
  }, 300_000);

  test("snapshotVolume create, delete and revert", async () => {
    const volume = await createVolume("snap-me");
    const snapshots = async () => ((await qemuImg("info", "-U", volumeFile(volume))).snapshots ?? []).map((s: { name: string }) => s.name);
    const rows = async () => (await system.prisma.volumeSnapshot.findMany({ where: { volumeId: volume } })).map((s) => s.name);
    const deleteSnapshot = async (name: string) => completed(system, await system.request("DELETE", `/v1/volumes/${volume}/snapshots/${name}`));
    let runs = 0;
    const created = await sweepEveryStep(system, {
      workflowType: "snapshotVolume",
      start: async () => (await system.request("POST", `/v1/volumes/${volume}/snapshots`, { name: `s${++runs}` })).body.operationId,
      async afterSuccess() {
        expect({ pool: await snapshots(), rows: await rows() }).toEqual({ pool: [`s${runs}`], rows: [`s${runs}`] });
        await deleteSnapshot(`s${runs}`);
      },
      async expectCleanSlate() {
        await cleanSlate([volume]);
        expect({ pool: await snapshots(), rows: await rows() }).toEqual({ pool: [], rows: [] });
      },
      async finishCleanup() {
        // The snapshot the undo could not remove is recorded, so the API shows it and DELETE removes it.
        expect({ pool: await snapshots(), rows: await rows() }).toEqual({ pool: [`s${runs}`], rows: [`s${runs}`] });
        await deleteSnapshot(`s${runs}`);
      },
    });
    expect(created.undos).toEqual(["create"]);
    // delete and revert recover forward: a repeated request finishes the job.
    for (const action of ["delete", "revert"] as const) {
      const request = async () =>
        action === "delete"
          ? system.request("DELETE", `/v1/volumes/${volume}/snapshots/keep`)
          : system.request("POST", `/v1/volumes/${volume}/snapshots/keep/revert`);
      await sweepEveryStep(system, {
        workflowType: "snapshotVolume",
        async prepare() {
          if (!(await rows()).includes("keep")) await completed(system, await system.request("POST", `/v1/volumes/${volume}/snapshots`, { name: "keep" }));
        },
        start: async () => (await request()).body.operationId,
        async afterSuccess() {
          expect(await snapshots()).toEqual(action === "delete" ? [] : ["keep"]);
          expect(await rows()).toEqual(action === "delete" ? [] : ["keep"]);
        },
        async expectCleanSlate() {
          await completed(system, await request());
          await cleanSlate([volume]);
        },
      });
    }
    await completed(system, await system.request("DELETE", `/v1/volumes/${volume}`));
  }, 300_000);

  test("resizeVolume and detachVolume recover forward: a repeated request finishes", async () => {
    let volume = "";
    await sweepEveryStep(system, {
      workflowType: "resizeVolume",
      async prepare() {
        volume = await createVolume("grow-me");
      },
      start: async () => (await system.request("POST", `/v1/volumes/${volume}/resize`, { sizeGiB: 2 })).body.operationId,
      async afterSuccess() {
        expect((await qemuImg("info", "-U", volumeFile(volume)))["virtual-size"]).toBe(2 * GiB);
        expect((await system.request("GET", `/v1/volumes/${volume}`)).body.sizeBytes).toBe(2 * GiB);
        await completed(system, await system.request("DELETE", `/v1/volumes/${volume}`));
      },
      async expectCleanSlate() {
        await completed(system, await system.request("POST", `/v1/volumes/${volume}/resize`, { sizeGiB: 2 }));
        expect((await qemuImg("info", "-U", volumeFile(volume)))["virtual-size"]).toBe(2 * GiB);
        await completed(system, await system.request("DELETE", `/v1/volumes/${volume}`));
      },
    });
    await sweepEveryStep(system, {
      workflowType: "detachVolume",
      async prepare() {
        volume = await createVolume("detach-me");
        await completed(system, await system.request("POST", `/v1/volumes/${volume}/attach`, { vmId }));
      },
      start: async () => (await system.request("POST", `/v1/volumes/${volume}/detach`)).body.operationId,
      async afterSuccess() {
        expect(Object.keys(await domainDisks(vmId))).toEqual(["vda"]);
        await completed(system, await system.request("DELETE", `/v1/volumes/${volume}`));
        await cleanSlate([]);
      },
      async expectCleanSlate() {
        await completed(system, await system.request("POST", `/v1/volumes/${volume}/detach`));
        expect(Object.keys(await domainDisks(vmId))).toEqual(["vda"]);
        await completed(system, await system.request("DELETE", `/v1/volumes/${volume}`));
        await cleanSlate([]);
      },
    });
  }, 300_000);

  test("initStoragePool (assign) undoes the host on failure; releaseStoragePool (unassign) recovers forward", async () => {
    const res = await system.request("POST", "/v1/storage/pools", { name: "assign-me", kind: "dir", config: { path: path.join(poolDir, "..", "assign-me") } });
    await completed(system, res);
    const id = res.body.poolId;
    const definitionFile = path.join(path.dirname(host().poolDir), "state", "pools", id, "definition.json");
    const unassigned = async () => {
      expect(await system.prisma.storagePoolHost.count({ where: { poolId: id } })).toBe(0);
      await expect(fs.access(definitionFile)).rejects.toThrow();
    };
    const assign = async () => system.request("POST", `/v1/storage/pools/${id}/hosts/${host().id}`);
    const unassign = async () => system.request("DELETE", `/v1/storage/pools/${id}/hosts/${host().id}`);
    await sweepEveryStep(system, {
      workflowType: "initStoragePool",
      start: async () => (await assign()).body.operationId,
      async afterSuccess() {
        await fs.access(definitionFile);
        await completed(system, await unassign());
        await unassigned();
      },
      expectCleanSlate: unassigned,
    });
    await sweepEveryStep(system, {
      workflowType: "releaseStoragePool",
      async prepare() {
        await completed(system, await assign());
      },
      start: async () => (await unassign()).body.operationId,
      afterSuccess: unassigned,
      async expectCleanSlate() {
        await completed(system, await unassign());
        await unassigned();
      },
    });
  }, 300_000);
});
