import { execFileSync } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { parseSecretsKey } from "../../common/sealed-secrets";
import { openUrlSecrets } from "../../common/sealed-url";
import { expectNoFailedUndo } from "../support/assertions";
import { historyText } from "../support/history-text";
import { startTestSystem, TEST_SECRETS_KEY, type TestHost, type TestSystem } from "../support/system";
import { testPaths } from "../support/test-env";
import { ImageServer } from "./image-server";
import { pollImage } from "./poll-image";

/**
 * The image library through the API under hostile use by a user with a valid token (issue 13),
 * on the real system: the test web server (test/support/test-network.ts) playing slow, redirecting,
 * credential-checking and lying mirrors. Each test checks the refusal or outcome and that nothing
 * is left: pool files, staged files, rows, history text.
 */
const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

let system: TestSystem;
let host: TestHost;
let root: string;
let iso: Buffer;
const server = new ImageServer();

beforeAll(async () => {
  root = mkdtempSync(path.join(__dirname, "../../.data/test-hostile-images-"));
  mkdirSync(path.join(root, "content"));
  writeFileSync(path.join(root, "content", "payload.bin"), randomBytes(MiB));
  execFileSync("genisoimage", ["-quiet", "-o", path.join(root, "small.iso"), "-V", "HOSTILE", path.join(root, "content")]);
  iso = readFileSync(path.join(root, "small.iso"));
  await server.start();
  // Stall detection with a window short enough for a test: under 4 KiB in 3 s, or 3 s of silence.
  system = await startTestSystem({ imageHeartbeatIntervalMs: 100, downloadStall: { windowMs: 3_000, minBytes: 4096, idleMs: 3_000, retries: 0 } });
  host = system.hosts[0]!;
});

afterAll(async () => {
  await system?.shutdown();
  await server.stop();
  rmSync(root, { recursive: true, force: true });
});

const imagesDir = () => path.join(host.poolDir, "images");
const poolFilesOf = (imageId: string) => (existsSync(imagesDir()) ? readdirSync(imagesDir()).filter((f) => f.includes(imageId)) : []);

function urlImage(url: string, extra: Record<string, unknown> = {}) {
  return system.request("POST", "/v1/images", { source: "url", url, name: "hostile", kind: "iso", poolId: host.poolId, ...extra });
}

/** Posts a URL image, waits for its download to end; the operation and the image as the API shows them. */
async function downloaded(url: string, extra: Record<string, unknown> = {}) {
  const res = await urlImage(url, extra);
  expect(res.status).toBe(202);
  const op = await system.waitForOperation(res.body.operationId);
  const image = (await system.request("GET", `/v1/images/${res.body.imageId}`)).body;
  return { imageId: res.body.imageId as string, op, image };
}

describe("1. outbound fetch policy", () => {
  test.each([
    ["the Temporal UI on loopback", "http://127.0.0.1:8233/namespaces/default/workflows"],
    ["the API itself", () => `${system.api.url}/v1/images`],
    ["[::1]", "http://[::1]:8080/x.iso"],
    ["IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/x.iso"],
    ["a loopback address written as a number", "http://2130706433/x.iso"],
    ["localhost", "http://localhost:8233/"],
    ["the metadata service", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
    ["a link-local IPv6 address", "http://[fe80::1]/x.iso"],
    ["a private network the operator did not list", "http://192.168.0.10/x.iso"],
  ])("a URL naming %s is 400 URL_NOT_ALLOWED and records nothing", async (_what, url) => {
    const res = await urlImage(typeof url === "function" ? url() : url);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "URL_NOT_ALLOWED" });
    expect(await system.prisma.image.count()).toBe(0);
    expect(await system.prisma.operation.count()).toBe(0);
  });

  test.each([
    ["the API itself", () => `${system.api.url}/v1/images`],
    ["the metadata service", () => "http://169.254.169.254/latest/meta-data/"],
    ["[::1]", () => "http://[::1]:8233/"],
  ])("a mirror redirecting to %s: the download fails URL_NOT_ALLOWED at the hop, nothing in the pool", async (what, target) => {
    const route = `/redirect-${what.replace(/\W+/g, "-")}.iso`;
    server.route(route, { body: Buffer.alloc(0), redirectTo: target() });
    const { imageId, op, image } = await downloaded(server.url(route));
    expect(op).toMatchObject({ state: "FAILED", error: { code: "URL_NOT_ALLOWED" } });
    expect(op.steps.find((s: { state: string }) => s.state === "FAILED")).toMatchObject({ name: "download" });
    expectNoFailedUndo(op);
    expect(image).toMatchObject({ status: "FAILED", error: { code: "URL_NOT_ALLOWED" }, path: null });
    expect(poolFilesOf(imageId)).toEqual([]);
  });

  test("a closed port fails fast and permanently, not after minutes of retries", async () => {
    const started = Date.now();
    // Port 9 (discard) of the test network's address: nothing listens there.
    const { op } = await downloaded(`http://${new URL(server.url("/")).hostname}:9/x.iso`);
    expect(op).toMatchObject({ state: "FAILED", error: { code: "DOWNLOAD_FAILED", message: expect.stringMatching(/^could not connect to http:\/\/[\d.]+:9$/) } });
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  test("the allow-listed mirror works, and so does an upload (the control plane's own URL, on loopback)", async () => {
    server.route("/fine.iso", { body: iso });
    const { image } = await downloaded(server.url("/fine.iso"), { checksum: { algorithm: "sha256", value: sha256(iso) } });
    expect(image).toMatchObject({ status: "READY", sizeBytes: iso.length });
    const created = await system.request("POST", "/v1/images", { source: "upload", name: "up", kind: "iso", poolId: host.poolId });
    const res = await fetch(`${system.api.url}/v1/images/${created.body.id}/content`, { method: "PUT", headers: { authorization: "Bearer test-token" }, body: iso });
    expect(res.status).toBe(202);
    const { operationId } = (await res.json()) as { operationId: string };
    expect(await system.waitForOperation(operationId)).toMatchObject({ state: "COMPLETED" });
  });
});

/** Every row of every table of the test system's database, as text. */
async function allRowsText(): Promise<string> {
  const tables = await system.prisma.$queryRaw<{ table_name: string }[]>`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`;
  const texts: string[] = [];
  for (const { table_name } of tables) {
    const rows = await system.prisma.$queryRawUnsafe<{ row: string }[]>(`SELECT to_jsonb(t)::text AS row FROM "${table_name}" t`);
    texts.push(...rows.map((r) => r.row));
  }
  return texts.join("\n");
}

/** Bytes of every file of the test Temporal server's database (its SQLite file and journal). */
function temporalDatabaseText(): string {
  const dir = testPaths.temporalDir;
  // A journal comes and goes with each transaction (its content is in the database file by then).
  const read = (file: string) => {
    try {
      return statSync(file).isFile() ? readFileSync(file).toString("latin1") : "";
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
      throw err;
    }
  };
  const texts = readdirSync(dir).map((name) => read(path.join(dir, name)));
  expect(texts.some((text) => text.length > 0)).toBe(true);
  return texts.join("\n");
}

/**
 * None of `secrets` is in the clear anywhere a user, an operator or the Temporal UI could read it:
 * the workflow's decoded history, any database row, the API's answers, the Temporal server's files.
 */
async function expectNowhere(secrets: string[], ids: { imageId: string; operationId: string; workflowId: string }): Promise<void> {
  const api = await Promise.all(
    [`/v1/images/${ids.imageId}`, "/v1/images", `/v1/operations/${ids.operationId}`, "/v1/operations"].map(async (p) => JSON.stringify((await system.request("GET", p)).body)),
  );
  const places: Record<string, string> = {
    history: await historyText(system.temporal, ids.workflowId),
    rows: await allRowsText(),
    api: api.join("\n"),
    temporalDatabase: temporalDatabaseText(),
  };
  for (const secret of secrets) {
    for (const [where, text] of Object.entries(places)) expect({ where, found: text.includes(secret) }).toEqual({ where, found: false });
  }
}

describe("2. URL secrets are secrets", () => {
  const password = `pw-${randomBytes(9).toString("hex")}`;
  const signature = `sig-${randomBytes(9).toString("hex")}`;
  const authorization = `Basic ${Buffer.from(`mirror-user:${password}`).toString("base64")}`;
  const query = `?X-Signature=${signature}&Expires=1999999999`;
  const withSecrets = (route: string, pass = password) => server.url(route).replace("http://", `http://mirror-user:${pass}@`) + query;

  test("user info and a signed query reach the mirror, and nothing else holds them", async () => {
    server.route("/private.iso", { body: iso, expectAuthorization: authorization, expectQuery: query });
    const { imageId, op, image } = await downloaded(withSecrets("/private.iso"), { checksum: { algorithm: "sha256", value: sha256(iso) } });
    expect(op.state).toBe("COMPLETED");
    expect(image).toMatchObject({ status: "READY", source: { url: server.url("/private.iso") } });
    expect(poolFilesOf(imageId)).toEqual([`${imageId}.iso`]);
    // Kept sealed only while the download needed them.
    expect(await system.prisma.imageSourceSecret.count({ where: { imageId } })).toBe(0);
    await expectNowhere([password, signature, authorization.slice(6)], { imageId, operationId: op.id, workflowId: op.workflowId });
  });

  test("a wrong password is the mirror's 401, and the error shows no secret", async () => {
    server.route("/private-2.iso", { body: iso, expectAuthorization: authorization, expectQuery: query });
    const wrong = `wrong-${randomBytes(6).toString("hex")}`;
    const { imageId, op, image } = await downloaded(withSecrets("/private-2.iso", wrong));
    expect(op).toMatchObject({ state: "FAILED", error: { code: "DOWNLOAD_FAILED", message: expect.stringContaining("401") } });
    expect(image).toMatchObject({ status: "FAILED" });
    expect(poolFilesOf(imageId)).toEqual([]);
    await expectNowhere([wrong, signature], { imageId, operationId: op.id, workflowId: op.workflowId });
  });

  test("an upload's token, while its download waits for a slot, is nowhere in the clear", async () => {
    // Both download slots of the host are taken by slow mirrors: the upload's download waits.
    server.route("/slow-slot.iso", { body: Buffer.concat([iso, Buffer.alloc(8 * MiB)]), chunkDelayMs: 500 });
    const blockers = await Promise.all([0, 1].map(async () => (await urlImage(server.url("/slow-slot.iso"))).body.operationId as string));
    const created = await system.request("POST", "/v1/images", { source: "upload", name: "token-test", kind: "iso", poolId: host.poolId });
    const imageId = created.body.id as string;
    const put = await fetch(`${system.api.url}/v1/images/${imageId}/content`, { method: "PUT", headers: { authorization: "Bearer test-token" }, body: iso });
    expect(put.status).toBe(202);
    const { operationId } = (await put.json()) as { operationId: string };
    const waiting = await system.waitForOperation(operationId, (op) => op.currentStep === "download");
    // The token, as only the control plane can read it (sealed under its key).
    const sealed = await system.prisma.imageSourceSecret.findUniqueOrThrow({ where: { imageId } });
    const { query: tokenQuery } = openUrlSecrets((sealed.values as { source: Record<string, string> }).source, parseSecretsKey(TEST_SECRETS_KEY));
    const token = decodeURIComponent(new URLSearchParams(tokenQuery).get("token")!);
    expect(token.length).toBeGreaterThanOrEqual(40);
    await expectNowhere([token], { imageId, operationId, workflowId: waiting.workflowId });

    for (const blocker of blockers) await system.request("POST", `/v1/operations/${blocker}/cancel`);
    expect(await system.waitForOperation(operationId)).toMatchObject({ state: "COMPLETED" });
    expect(await system.prisma.imageSourceSecret.count({ where: { imageId } })).toBe(0);
    await expectNowhere([token], { imageId, operationId, workflowId: waiting.workflowId });
  });
});

describe("3. stalled transfers", () => {
  test("two byte-a-second mirrors fail DOWNLOAD_STALLED and free both slots; the rate shown is measured", async () => {
    server.route("/trickle.iso", { body: iso, chunkBytes: 1, chunkDelayMs: 1_000 });
    const trickles = await Promise.all([0, 1].map(async () => (await urlImage(server.url("/trickle.iso"))).body as { imageId: string; operationId: string }));
    // Both slots (QX_MAX_CONCURRENT_DOWNLOADS=2) are taken: this one waits for one of them.
    server.route("/after.iso", { body: iso });
    const after = (await urlImage(server.url("/after.iso"), { checksum: { algorithm: "sha256", value: sha256(iso) } })).body as { imageId: string; operationId: string };

    const live = await pollImage(system, trickles[0]!.imageId, (i) => i.progress.bytesDone > 0);
    expect(live).toMatchObject({ status: "DOWNLOADING", progress: { phase: "downloading" } });
    expect(live.progress.bytesPerSecond).toBeLessThanOrEqual(3);

    for (const { imageId, operationId } of trickles) {
      const op = await system.waitForOperation(operationId);
      expect(op).toMatchObject({ state: "FAILED", error: { code: "DOWNLOAD_STALLED" } });
      expectNoFailedUndo(op);
      expect((await system.request("GET", `/v1/images/${imageId}`)).body).toMatchObject({ status: "FAILED", error: { code: "DOWNLOAD_STALLED" } });
      expect(poolFilesOf(imageId)).toEqual([]);
    }
    expect(await system.waitForOperation(after.operationId)).toMatchObject({ state: "COMPLETED" });
    expect(poolFilesOf(after.imageId)).toEqual([`${after.imageId}.iso`]);
  });
});

describe("4. one upload per image", () => {
  const staging = () => system.config.imageStagingDir!;
  const stagedFilesOf = (imageId: string) => (existsSync(staging()) ? readdirSync(staging()).filter((f) => f.includes(imageId)) : []);

  async function uploadImage(name: string): Promise<string> {
    const created = await system.request("POST", "/v1/images", { source: "upload", name, kind: "iso", poolId: host.poolId, checksum: { algorithm: "sha256", value: sha256(iso) } });
    expect(created.status).toBe(201);
    return created.body.id;
  }

  /** A PUT whose body arrives in pieces over a while (a slow client), answered when the last is in. */
  function slowPut(imageId: string, pieces = 10, gapMs = 200): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const req = http.request(`${system.api.url}/v1/images/${imageId}/content`, {
        method: "PUT",
        headers: { authorization: "Bearer test-token", "content-length": String(iso.length) },
      });
      req.on("response", (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on("error", reject);
      const size = Math.ceil(iso.length / pieces);
      let offset = 0;
      const next = () => {
        req.write(iso.subarray(offset, offset + size));
        offset += size;
        if (offset >= iso.length) req.end();
        else setTimeout(next, gapMs);
      };
      next();
    });
  }

  const put = async (imageId: string) => {
    const res = await fetch(`${system.api.url}/v1/images/${imageId}/content`, { method: "PUT", headers: { authorization: "Bearer test-token" }, body: iso });
    return { status: res.status, body: (await res.json()) as any };
  };

  /** The slow PUT has claimed the image (its first bytes are on their way). */
  async function untilClaimed(imageId: string): Promise<void> {
    for (const deadline = Date.now() + 10_000; (await system.prisma.image.count({ where: { id: imageId, uploadClaim: { not: null } } })) === 0; await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > deadline) throw new Error(`image ${imageId} was never claimed`);
    }
  }

  async function untilNoStagedFile(imageId: string): Promise<void> {
    for (const deadline = Date.now() + 15_000; stagedFilesOf(imageId).length > 0; await new Promise((r) => setTimeout(r, 100))) {
      if (Date.now() > deadline) throw new Error(`staged files of ${imageId} left: ${stagedFilesOf(imageId).join(", ")}`);
    }
  }

  test("a second upload while one is sent is 409 at its start; the first becomes READY and its staged file goes", async () => {
    const imageId = await uploadImage("once");
    const first = slowPut(imageId);
    await untilClaimed(imageId);
    const second = await put(imageId);
    expect(second).toMatchObject({ status: 409, body: { code: "CONFLICT" } });
    const accepted = await first;
    expect(accepted.status).toBe(202);
    expect(await system.waitForOperation(accepted.body.operationId)).toMatchObject({ state: "COMPLETED" });
    const image = (await system.request("GET", `/v1/images/${imageId}`)).body;
    expect(image).toMatchObject({ status: "READY", sizeBytes: iso.length });
    expect(readFileSync(path.join(host.poolDir, image.path)).equals(iso)).toBe(true);
    expect(await system.prisma.operation.count({ where: { targetId: imageId } })).toBe(1);
    await untilNoStagedFile(imageId);
    expect(await put(imageId)).toMatchObject({ status: 409 });
  });

  test("one that slipped in (its claim lapsed, as when its API dies) is 409 at its end and leaves the READY image as it is", async () => {
    const imageId = await uploadImage("slipped");
    const late = slowPut(imageId, 20, 250);
    await untilClaimed(imageId);
    // The claim lapses (its lease not renewed for minutes), so another upload may take over, and does.
    await system.prisma.image.update({ where: { id: imageId }, data: { uploadClaimedAt: new Date(Date.now() - 10 * 60_000) } });
    const takeover = await put(imageId);
    expect(takeover.status).toBe(202);
    expect(await system.waitForOperation(takeover.body.operationId)).toMatchObject({ state: "COMPLETED" });
    const ready = await system.prisma.image.findUniqueOrThrow({ where: { id: imageId } });
    expect(ready.status).toBe("READY");

    const answer = await late;
    expect(answer).toMatchObject({ status: 409, body: { code: "CONFLICT" } });
    expect(await system.prisma.image.findUniqueOrThrow({ where: { id: imageId } })).toEqual(ready);
    expect(readFileSync(path.join(host.poolDir, ready.path!)).equals(iso)).toBe(true);
    expect(await system.prisma.operation.count({ where: { targetId: imageId } })).toBe(1);
    await untilNoStagedFile(imageId);
  });

  test("a download run started for a READY image anyway fails at validate and changes nothing", async () => {
    const imageId = await uploadImage("late-run");
    const res = await put(imageId);
    expect(await system.waitForOperation(res.body.operationId)).toMatchObject({ state: "COMPLETED" });
    const ready = await system.prisma.image.findUniqueOrThrow({ where: { id: imageId } });
    // What a late finisher used to do: a second downloadImage run for the same image, as the API records one.
    const operationId = randomUUID();
    const workflowId = `download-image:${imageId}:${operationId}`;
    await system.prisma.operation.create({ data: { id: operationId, type: "download-image", targetType: "image", targetId: imageId, requestedBy: "tester", workflowId, input: {} } });
    await system.temporal.workflow.start("downloadImage", {
      taskQueue: system.config.controlPlaneQueue,
      workflowId,
      args: [{ operationId, imageId, maxBytes: 64 * MiB, timeouts: { hostScheduleToStartMs: 30_000 } }],
    });
    const op = await system.waitForOperation(operationId);
    expect(op).toMatchObject({ state: "FAILED", error: { code: "CONFLICT" } });
    expect(op.steps.map((s: { name: string; state: string }) => [s.name, s.state])).toEqual([["validate", "FAILED"]]);
    expect(await system.prisma.image.findUniqueOrThrow({ where: { id: imageId } })).toEqual(ready);
    expect(poolFilesOf(imageId)).toEqual([path.basename(ready.path!)]);
  });
});
