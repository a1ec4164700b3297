import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { runCommand } from "../../common/exec";
import { diskPath, expectNoFailedUndo, expectPendingCleanup, filesNaming, qemuImgInfo } from "../support/assertions";
import { INJECTED_FAILURE_CODE } from "../support/faults";
import { runningTwice } from "../support/step-failures";
import { sweepEveryStep, type SweepScenario } from "../support/sweep";
import { startTestSystem, type TestHost, type TestSystem } from "../support/system";
import { ImageServer } from "./image-server";
import { pollImage } from "./poll-image";

const MiB = 1024 * 1024;
const MAX_IMAGE_BYTES = 64 * MiB;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

let system: TestSystem;
let host: TestHost;
let root: string;
const server = new ImageServer();
const fixtures = {} as Record<"iso" | "bigIso" | "cloudImage" | "html", Buffer>;
let sshKey: string;

function isoOf(dir: string, name: string, payloadBytes: number): Buffer {
  const content = path.join(dir, `${name}-content`);
  mkdirSync(content);
  writeFileSync(path.join(content, "payload.bin"), randomBytes(payloadBytes));
  const iso = path.join(dir, `${name}.iso`);
  execFileSync("genisoimage", ["-quiet", "-o", iso, "-V", name.toUpperCase(), content]);
  return readFileSync(iso);
}

beforeAll(async () => {
  root = mkdtempSync(path.join(__dirname, "../../.data/test-image-library-"));
  fixtures.iso = isoOf(root, "small", MiB);
  fixtures.bigIso = isoOf(root, "big", 24 * MiB);
  // A "cloud image": a qcow2 with a 1 GiB virtual disk (no OS needed for the domain to run).
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", path.join(root, "cloud.qcow2"), "1G"]);
  fixtures.cloudImage = readFileSync(path.join(root, "cloud.qcow2"));
  fixtures.html = Buffer.from(`<!DOCTYPE html><html><body>Mirror maintenance${" ".repeat(64 * 1024)}</body></html>`);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "tester@quantix", "-f", path.join(root, "id_ed25519")]);
  sshKey = readFileSync(path.join(root, "id_ed25519.pub"), "utf8").trim();
  await server.start();
  system = await startTestSystem({ maxImageBytes: MAX_IMAGE_BYTES, imageHeartbeatIntervalMs: 100 });
  host = system.hosts[0]!;
});

afterAll(async () => {
  await system?.shutdown();
  await server.stop();
  rmSync(root, { recursive: true, force: true });
});

const imagesDir = () => path.join(host.poolDir, "images");
/** Every file of an image in the pool, finished or partial. */
const filesOf = (imageId: string) => (existsSync(imagesDir()) ? readdirSync(imagesDir()).filter((f) => f.includes(imageId)) : []);

async function postImage(body: Record<string, unknown>): Promise<{ imageId: string; operationId: string }> {
  const res = await system.request("POST", "/v1/images", { poolId: host.poolId, ...body });
  expect(res.status).toBe(202);
  return { imageId: res.body.imageId, operationId: res.body.operationId };
}

async function downloadIso(route: string, body: Buffer): Promise<string> {
  server.route(route, { body, ranges: true, etag: `"${sha256(body).slice(0, 16)}"` });
  const { imageId, operationId } = await postImage({ source: "url", url: server.url(route), name: route, kind: "iso", checksum: { algorithm: "sha256", value: sha256(body) } });
  expect(await system.waitForOperation(operationId)).toMatchObject({ state: "COMPLETED" });
  return imageId;
}

/** Sends only the headers of a PUT that announces `length` bytes (fetch would not send such a header). */
function putDeclaringLength(imageId: string, length: number): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${system.api.url}/v1/images/${imageId}/content`, {
      method: "PUT",
      headers: { authorization: "Bearer test-token", "content-length": String(length) },
    });
    req.on("response", (res) => {
      let text = "";
      res.on("data", (chunk: Buffer) => (text += chunk.toString()));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, code: JSON.parse(text).code });
      });
    });
    req.on("error", reject);
    req.flushHeaders();
  });
}

const isoFile = (iso: string, file: string) => execFileSync("isoinfo", ["-i", iso, "-R", "-x", `/${file}`], { encoding: "utf8" });

describe("image library through the API on real Temporal, PostgreSQL, HTTP and KVM", () => {
  test("GET /v1/images/catalog serves the built-in catalog merged with the operator's file", async () => {
    const operatorFile = path.join(root, "catalog.json");
    writeFileSync(
      operatorFile,
      JSON.stringify({
        images: [
          {
            id: "local-test-iso",
            name: "Local test ISO",
            kind: "iso",
            os: { family: "linux", distribution: "test", version: "1" },
            url: server.url("/catalog/test.iso"),
            format: "iso",
            checksumFile: { algorithm: "sha256", url: server.url("/catalog/SHA256SUMS") },
          },
        ],
      }),
    );
    system.config.imageCatalogFile = operatorFile;
    const items = (await system.request("GET", "/v1/images/catalog")).body.items;
    expect(items.map((i: { id: string }) => i.id)).toEqual(expect.arrayContaining(["debian-12-genericcloud", "ubuntu-24.04-cloudimg", "local-test-iso"]));
  });

  test("a catalog image is downloaded and verified against its publisher's sums file", async () => {
    server.route("/catalog/test.iso", { body: fixtures.iso });
    server.route("/catalog/SHA256SUMS", { body: Buffer.from(`${sha256(randomBytes(8))}  other.iso\n${sha256(fixtures.iso)} *test.iso\n`) });
    const { imageId, operationId } = await postImage({ source: "catalog", catalogId: "local-test-iso" });
    const op = await system.waitForOperation(operationId);
    expect(op).toMatchObject({ state: "COMPLETED", type: "download-image", target: { type: "image", id: imageId } });
    expect(op.steps.map((s: { name: string }) => s.name)).toEqual(["validate", "place", "resolve-checksum", "download", "record"]);
    const image = (await system.request("GET", `/v1/images/${imageId}`)).body;
    expect(image).toMatchObject({ status: "READY", checksum: { algorithm: "sha256", value: sha256(fixtures.iso) }, source: { catalogId: "local-test-iso" } });
  });

  test("a clean download by URL: READY, the file in the pool, its checksum and size recorded", async () => {
    const imageId = await downloadIso("/clean.iso", fixtures.iso);
    const image = (await system.request("GET", `/v1/images/${imageId}`)).body;
    expect(image).toMatchObject({
      status: "READY",
      kind: "iso",
      format: "iso",
      sizeBytes: fixtures.iso.length,
      hostId: host.id,
      path: `images/${imageId}.iso`,
      progress: { percent: 100 },
      error: null,
    });
    expect(readFileSync(path.join(host.poolDir, image.path)).equals(fixtures.iso)).toBe(true);
    expect(filesOf(imageId)).toEqual([`${imageId}.iso`]);
    expect((await system.request("GET", "/v1/images")).body.items.map((i: { id: string }) => i.id)).toContain(imageId);
  });

  test("the host worker killed mid-download: the retried activity resumes and re-fetches under a tenth of the file", async () => {
    const body = fixtures.bigIso;
    const stallAt = Math.floor(body.length * 0.98);
    server.route("/big.iso", { body, ranges: true, etag: '"big-v1"', chunkDelayMs: 20, stallAt });
    const { imageId, operationId } = await postImage({ source: "url", url: server.url("/big.iso"), name: "big", kind: "iso", checksum: { algorithm: "sha256", value: sha256(body) } });

    // Live progress comes from the download's heartbeats, through the API.
    const moving = await pollImage(system, imageId, (i) => i.progress.bytesDone > 0);
    expect(moving).toMatchObject({ status: "DOWNLOADING", progress: { phase: "downloading", bytesTotal: body.length } });
    // The mirror stalls: what arrived before is synced and heartbeated while it is silent.
    await pollImage(system, imageId, (i) => i.progress.bytesDone === stallAt);
    await system.stopHostWorker(host);

    server.route("/big.iso", { body, ranges: true, etag: '"big-v1"' });
    await system.startHostWorker(host);
    const op = await system.waitForOperation(operationId);
    expect(op).toMatchObject({ state: "COMPLETED" });
    expect(server.bytesServed("/big.iso")).toBeLessThan(body.length / 10);
    const file = readFileSync(path.join(host.poolDir, "images", `${imageId}.iso`));
    expect(sha256(file)).toBe(sha256(body));
    expect(filesOf(imageId)).toEqual([`${imageId}.iso`]);
  });

  test("cancel stops the download within a heartbeat and leaves no file", async () => {
    server.route("/slow.iso", { body: fixtures.bigIso, chunkDelayMs: 20 });
    const { imageId, operationId } = await postImage({ source: "url", url: server.url("/slow.iso"), name: "slow", kind: "iso" });
    await pollImage(system, imageId, (i) => i.progress.bytesDone > MiB);
    expect(filesOf(imageId)).toEqual([`.partial-${imageId}`]);
    const cancelledAt = Date.now();
    expect((await system.request("POST", `/v1/operations/${operationId}/cancel`)).status).toBe(202);
    const op = await system.waitForOperation(operationId);
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);
    expect(op).toMatchObject({ state: "CANCELLED", error: { code: "CANCELLED" } });
    expectNoFailedUndo(op);
    expect(filesOf(imageId)).toEqual([]);
    expect((await system.request("GET", `/v1/images/${imageId}`)).body).toMatchObject({ status: "FAILED", error: { code: "CANCELLED" } });
  });

  const badCases: { name: string; code: string; route: () => string; checksum?: () => string }[] = [
    { name: "wrong checksum", code: "CHECKSUM_MISMATCH", route: () => (server.route("/bad/sum.iso", { body: fixtures.iso }), "/bad/sum.iso"), checksum: () => sha256(fixtures.html) },
    { name: "an HTML page instead of an ISO", code: "CONTENT_TYPE_MISMATCH", route: () => (server.route("/bad/page.iso", { body: fixtures.html }), "/bad/page.iso") },
    { name: "404", code: "DOWNLOAD_FAILED", route: () => "/bad/missing.iso" },
    {
      name: "larger than the limit",
      code: "CONTENT_TOO_LARGE",
      route: () => (server.route("/bad/huge.iso", { body: fixtures.iso, declaredLength: MAX_IMAGE_BYTES + 1 }), "/bad/huge.iso"),
    },
  ];

  test.each(badCases)("$name fails with $code and leaves no file", async ({ code, route, checksum }) => {
    const url = server.url(route());
    const { imageId, operationId } = await postImage({
      source: "url",
      url,
      name: "bad",
      kind: "iso",
      ...(checksum ? { checksum: { algorithm: "sha256", value: checksum() } } : {}),
    });
    const op = await system.waitForOperation(operationId);
    expect(op).toMatchObject({ state: "FAILED", error: { code } });
    expect(op.steps.find((s: { state: string }) => s.state === "FAILED")).toMatchObject({ name: "download" });
    expectNoFailedUndo(op);
    expect((await system.request("GET", `/v1/images/${imageId}`)).body).toMatchObject({ status: "FAILED", error: { code }, path: null });
    expect(filesOf(imageId)).toEqual([]);
  });

  test("a VM from a cloud image runs on a CoW clone of it, with a seed ISO holding the SSH key and only a password hash", async () => {
    server.route("/cloud.qcow2", { body: fixtures.cloudImage });
    const { imageId, operationId } = await postImage({ source: "url", url: server.url("/cloud.qcow2"), name: "cloud", kind: "disk", checksum: { algorithm: "sha256", value: sha256(fixtures.cloudImage) } });
    expect(await system.waitForOperation(operationId)).toMatchObject({ state: "COMPLETED" });

    const password = "correct horse battery staple";
    const access = { hostname: "cloud-1", sshAuthorizedKeys: [sshKey], password };
    const created = await system.request("POST", "/v1/vms", { name: "cloud-1", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1, imageId, access });
    expect(created.status).toBe(202);
    const vmId = created.body.vmId;
    const op = await system.waitForOperation(created.body.operationId);
    expect(op).toMatchObject({ state: "COMPLETED" });
    expect(op.steps.map((s: { name: string }) => s.name)).toEqual(["validate", "place", "create-disk", "build-seed-iso", "define-domain", "start-domain", "wait-running", "record"]);
    expect(await system.domainState(vmId)).toBe("running");

    const vm = (await system.request("GET", `/v1/vms/${vmId}`)).body;
    expect(vm).toMatchObject({ imageId, baseImage: `images/${imageId}.qcow2`, poolId: host.poolId });
    const info = await qemuImgInfo(diskPath(host, vm.bootVolumeId));
    expect(info["backing-filename"]).toBe(path.join(host.poolDir, "images", `${imageId}.qcow2`));

    const seed = path.join(host.poolDir, "seeds", `${vmId}-seed.iso`);
    const userData = isoFile(seed, "user-data");
    expect(userData).toContain(sshKey);
    expect(userData).toMatch(/"password": "\$6\$[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}"/);
    expect(userData).not.toContain(password);
    expect(isoFile(seed, "meta-data")).toContain('"local-hostname": "cloud-1"');
    const xml = (await runCommand("virsh", ["-c", "qemu:///system", "dumpxml", `qx-${vmId}`])).stdout;
    expect(xml).toContain(`<source file='${seed}'`);
    // Neither the operation record nor any row holds the plain password.
    const operation = await system.prisma.operation.findUniqueOrThrow({ where: { id: created.body.operationId } });
    expect(JSON.stringify(operation.input)).not.toContain(password);

    expect((await system.request("DELETE", `/v1/images/${imageId}`)).body).toMatchObject({ code: "IMAGE_IN_USE" });

    const deleted = await system.request("DELETE", `/v1/vms/${vmId}`);
    const deleteOp = await system.waitForOperation(deleted.body.operationId);
    expect(deleteOp).toMatchObject({ state: "COMPLETED" });
    expect(deleteOp.steps.map((s: { name: string }) => s.name)).toContain("remove-seed-iso");
    expect(existsSync(seed)).toBe(false);

    const imageDeleted = await system.request("DELETE", `/v1/images/${imageId}`);
    expect(imageDeleted.status).toBe(202);
    expect(await system.waitForOperation(imageDeleted.body.operationId)).toMatchObject({ state: "COMPLETED", type: "delete-image" });
    expect(filesOf(imageId)).toEqual([]);
    expect((await system.request("GET", `/v1/images/${imageId}`)).status).toBe(404);
  });

  test("a VM from an ISO boots from the CD-ROM first, then the disk", async () => {
    const imageId = await downloadIso("/installer.iso", fixtures.iso);
    const created = await system.request("POST", "/v1/vms", { name: "installer-1", vcpus: 1, memoryMiB: 64, diskSizeGiB: 1, imageId });
    const vmId = created.body.vmId;
    const op = await system.waitForOperation(created.body.operationId);
    expect(op).toMatchObject({ state: "COMPLETED" });
    expect(op.steps.map((s: { name: string }) => s.name)).not.toContain("build-seed-iso");
    expect(await system.domainState(vmId)).toBe("running");
    const xml = (await runCommand("virsh", ["-c", "qemu:///system", "dumpxml", "--inactive", `qx-${vmId}`])).stdout;
    expect(xml).toMatch(/<boot dev='cdrom'\/>\s*<boot dev='hd'\/>/);
    expect(xml).toContain(`<source file='${path.join(host.poolDir, "images", `${imageId}.iso`)}'`);
    expect(xml).toMatch(/<disk type='file' device='cdrom'>[\s\S]*<readonly\/>/);
    const deleted = await system.request("DELETE", `/v1/vms/${vmId}`);
    expect(await system.waitForOperation(deleted.body.operationId)).toMatchObject({ state: "COMPLETED" });
  });

  test("an upload streams to the pool's host through a staged file, with the same verification", async () => {
    const created = await system.request("POST", "/v1/images", { source: "upload", name: "uploaded", kind: "iso", poolId: host.poolId, checksum: { algorithm: "sha256", value: sha256(fixtures.iso) } });
    expect(created.status).toBe(201);
    const imageId = created.body.id;
    expect(created.body).toMatchObject({ status: "PENDING", source: { upload: true } });

    // Refused on its declared length, before a byte is read.
    expect(await putDeclaringLength(imageId, MAX_IMAGE_BYTES + 1)).toMatchObject({ status: 413, code: "PAYLOAD_TOO_LARGE" });
    const staging = system.config.imageStagingDir!;
    expect(existsSync(staging) ? readdirSync(staging).filter((f) => f.includes(imageId)) : []).toEqual([]);

    const res = await fetch(`${system.api.url}/v1/images/${imageId}/content`, {
      method: "PUT",
      headers: { authorization: "Bearer test-token", "content-type": "application/octet-stream" },
      body: fixtures.iso,
    });
    expect(res.status).toBe(202);
    const { operationId } = (await res.json()) as { operationId: string };
    expect(await system.waitForOperation(operationId)).toMatchObject({ state: "COMPLETED" });
    const image = (await system.request("GET", `/v1/images/${imageId}`)).body;
    expect(image).toMatchObject({ status: "READY", sizeBytes: fixtures.iso.length, checksum: { value: sha256(fixtures.iso) } });
    expect(readFileSync(path.join(host.poolDir, image.path)).equals(fixtures.iso)).toBe(true);

    // The staged file is served only with its one-time token, and only while the download runs.
    const staged = await fetch(`${system.api.url}/internal/image-uploads/${imageId}?token=guess`);
    expect(staged.status).toBe(404);
    const again = await fetch(`${system.api.url}/v1/images/${imageId}/content`, { method: "PUT", headers: { authorization: "Bearer test-token" }, body: fixtures.iso });
    expect(again.status).toBe(409);
  });

  describe("failure sweep", () => {
    /** A failed download left no file of the image (the images directory must exist: no typo passes). */
    async function expectFailedImageLeftNothing(imageId: string): Promise<void> {
      const row = await system.prisma.image.findUnique({ where: { id: imageId } });
      if (row) expect(row).toMatchObject({ status: "FAILED", errorCode: INJECTED_FAILURE_CODE, path: null, cleanup: null });
      expect(await filesNaming(imagesDir(), [imageId])).toEqual([]);
    }

    async function deleteImage(imageId: string): Promise<void> {
      const res = await system.request("DELETE", `/v1/images/${imageId}`);
      expect(res.status).toBe(202);
      expect(await system.waitForOperation(res.body.operationId)).toMatchObject({ state: "COMPLETED" });
      expect(await filesNaming(imagesDir(), [imageId])).toEqual([]);
    }

    const downloadScenario = (body: () => Record<string, unknown>): SweepScenario => {
      return {
        workflowType: "downloadImage",
        start: async () => (await postImage(body())).operationId,
        async afterSuccess(op) {
          const image = (await system.request("GET", `/v1/images/${op.target.id}`)).body;
          expect(image).toMatchObject({ status: "READY", sizeBytes: fixtures.iso.length, checksum: { value: sha256(fixtures.iso) } });
          expect(readFileSync(path.join(host.poolDir, image.path)).equals(fixtures.iso)).toBe(true);
          await deleteImage(op.target.id);
        },
        expectCleanSlate: (op) => expectFailedImageLeftNothing(op.target.id),
        async finishCleanup(op, undoStep) {
          const image = (await system.request("GET", `/v1/images/${op.target.id}`)).body;
          expectPendingCleanup(image, undoStep);
          expect(image.cleanup.remains).toEqual([{ kind: "image-files", hostId: host.id, poolId: host.poolId, imageId: op.target.id }]);
          expect(image.hostId).toBe(host.id);
          await deleteImage(op.target.id);
        },
      };
    };

    test("downloadImage from a URL with a checksum given: every step fails before/after its work and once; the undo fails", async () => {
      server.route("/inject.iso", { body: fixtures.iso });
      let runs = 0;
      const report = await sweepEveryStep(
        system,
        downloadScenario(() => ({ source: "url", url: server.url("/inject.iso"), name: `inject-${++runs}`, kind: "iso", checksum: { algorithm: "sha256", value: sha256(fixtures.iso) } })),
      );
      expect(report.steps.map((s) => s.step)).toEqual(["validate", "place", "download", "record"]);
      expect(report.undos).toEqual(["download"]);
    }, 300_000);

    test("downloadImage of a catalog image, its checksum resolved from the publisher's sums file", async () => {
      // The operator's catalog entry (set up by the catalog test above) names the sums file.
      server.route("/catalog/test.iso", { body: fixtures.iso });
      server.route("/catalog/SHA256SUMS", { body: Buffer.from(`${sha256(fixtures.iso)} *test.iso\n`) });
      const report = await sweepEveryStep(system, downloadScenario(() => ({ source: "catalog", catalogId: "local-test-iso" })));
      expect(report.steps.map((s) => s.step)).toContain("resolve-checksum");
    }, 300_000);

    test("deleteImage recovers forward: a failed delete leaves the image in ERROR with its files referenced; DELETE again finishes", async () => {
      server.route("/to-delete.iso", { body: fixtures.iso, ranges: true });
      let next = "";
      await sweepEveryStep(system, {
        workflowType: "deleteImage",
        async prepare() {
          next = await downloadIso(`/to-delete-${randomBytes(4).toString("hex")}.iso`, fixtures.iso);
        },
        start: async () => (await system.request("DELETE", `/v1/images/${next}`)).body.operationId,
        async afterSuccess(op) {
          expect((await system.request("GET", `/v1/images/${op.target.id}`)).status).toBe(404);
          expect(await filesNaming(imagesDir(), [op.target.id])).toEqual([]);
        },
        async expectCleanSlate(op) {
          const image = (await system.request("GET", `/v1/images/${op.target.id}`)).body;
          if (image.status !== "READY") expectPendingCleanup(image, op.steps.find((s: { state: string }) => s.state === "FAILED").name);
          await deleteImage(op.target.id);
        },
      });
    }, 300_000);

    test("every step and every undo of downloadImage is idempotent: all activities run twice, then the download fails after its last step", async () => {
      server.route("/twice.iso", { body: fixtures.iso });
      const body = { source: "url", url: server.url("/twice.iso"), kind: "iso", checksum: { algorithm: "sha256", value: sha256(fixtures.iso) } };
      await system.startHostWorker(host, runningTwice(host.runtime.activities));
      await system.restartControlPlane(runningTwice(system.databaseActivities));
      system.faults.arm({ workflowType: "downloadImage", step: "download", variant: "after" });
      try {
        const failed = await postImage({ ...body, name: "twice-fail" });
        const op = await system.waitForOperation(failed.operationId);
        expect(op).toMatchObject({ state: "FAILED", error: { code: INJECTED_FAILURE_CODE } });
        expect(op.steps.filter((s: { kind: string }) => s.kind === "UNDO").map((s: { name: string }) => s.name)).toEqual(["download"]);
        expectNoFailedUndo(op);
        await expectFailedImageLeftNothing(failed.imageId);
        system.faults.clear();

        const ok = await postImage({ ...body, name: "twice-ok" });
        expect(await system.waitForOperation(ok.operationId)).toMatchObject({ state: "COMPLETED" });
        const image = (await system.request("GET", `/v1/images/${ok.imageId}`)).body;
        expect(image).toMatchObject({ status: "READY", sizeBytes: fixtures.iso.length, checksum: { value: sha256(fixtures.iso) } });
        expect(readFileSync(path.join(host.poolDir, image.path)).equals(fixtures.iso)).toBe(true);
        expect(filesOf(ok.imageId)).toEqual([path.basename(image.path)]);
      } finally {
        system.faults.clear();
        await system.restartControlPlane();
        await system.startHostWorker(host);
      }
    });
  });
});
