import { ActivityCancellationDetails, ApplicationFailure, CancelledFailure } from "@temporalio/common";
import { MockActivityEnvironment } from "@temporalio/testing";
import { DefaultLogger } from "@temporalio/worker";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { createImageDownloadActivities, type DownloadImageInput } from "../../activities/images/download";
import type { DownloadProgress } from "../../activities/images/progress";
import { DEFAULT_STALL_POLICY } from "../../activities/images/transfer-meter";
import { DEFAULT_FETCH_POLICY } from "../../activities/images/http-get";
import { parseFetchAllowList } from "../../common/fetch-policy";
import { listenInNamespace, testNetwork } from "../support/test-network";
import { ImageServer } from "./image-server";

const MiB = 1024 * 1024;
/** The failures are the point of most tests: no "Activity failed" warnings for each. */
const quietLogger = new DefaultLogger("ERROR");
/** The fetch policy of a host whose operator admitted the test web server's network (test-network.ts). */
const fetchPolicy = { ...DEFAULT_FETCH_POLICY, allow: parseFetchAllowList(testNetwork().cidr) };
const activities = createImageDownloadActivities({ heartbeatIntervalMs: 50, stall: { ...DEFAULT_STALL_POLICY, idleMs: 5_000 }, fetchPolicy });

let root: string;
let fixtures: string;
let pool: string;
const server = new ImageServer();
const images: Record<"iso" | "qcow2" | "raw" | "bigRaw" | "backed" | "html", Buffer> = {} as never;

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const sha512 = (data: Buffer) => createHash("sha512").update(data).digest("hex");

/** Random bytes that read as a raw disk: an MBR boot signature at 510. */
function rawDisk(size: number): Buffer {
  const disk = randomBytes(size);
  disk[510] = 0x55;
  disk[511] = 0xaa;
  return disk;
}

function buildFixtures(): void {
  const isoContent = path.join(fixtures, "iso-content");
  mkdirSync(isoContent);
  writeFileSync(path.join(isoContent, "payload.bin"), randomBytes(MiB));
  execFileSync("genisoimage", ["-quiet", "-o", path.join(fixtures, "test.iso"), "-V", "TEST", isoContent]);
  images.iso = readFileSync(path.join(fixtures, "test.iso"));

  images.raw = rawDisk(2 * MiB);
  writeFileSync(path.join(fixtures, "small.raw"), images.raw);
  execFileSync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", path.join(fixtures, "small.raw"), path.join(fixtures, "small.qcow2")]);
  images.qcow2 = readFileSync(path.join(fixtures, "small.qcow2"));

  images.bigRaw = rawDisk(16 * MiB);
  writeFileSync(path.join(fixtures, "big.raw"), images.bigRaw);

  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", path.join(fixtures, "backed.qcow2"), "1M"]);
  images.backed = readFileSync(path.join(fixtures, "backed.qcow2"));

  images.html = Buffer.concat([Buffer.from("<!DOCTYPE html><html><body>Mirror maintenance</body></html>\n"), Buffer.alloc(8 * MiB, " ")]);
}

beforeAll(async () => {
  mkdirSync(path.join(__dirname, "../../.data"), { recursive: true });
  root = mkdtempSync(path.join(__dirname, "../../.data/test-images-"));
  fixtures = path.join(root, "fixtures");
  mkdirSync(fixtures);
  buildFixtures();
  await server.start();
});

afterAll(async () => {
  await server.stop();
  rmSync(root, { recursive: true, force: true });
});

beforeEach(() => {
  pool = mkdtempSync(path.join(root, "pool-"));
});

interface Run {
  env: MockActivityEnvironment;
  heartbeats: DownloadProgress[];
  result: ReturnType<typeof activities.downloadImage>;
}

function download({ url, ...overrides }: Partial<Omit<DownloadImageInput, "source">> & { url: string }, heartbeatDetails?: DownloadProgress): Run {
  const env = new MockActivityEnvironment(heartbeatDetails ? { heartbeatDetails } : {}, { logger: quietLogger });
  const heartbeats: DownloadProgress[] = [];
  env.on("heartbeat", (d: DownloadProgress) => heartbeats.push(d));
  const input: DownloadImageInput = { imageId: "img-1", targetDir: pool, kind: "disk", maxBytes: 1024 * MiB, source: { kind: "url", url }, ...overrides };
  return { env, heartbeats, result: env.run(activities.downloadImage, input) };
}

async function failure(run: Run): Promise<ApplicationFailure> {
  const err = await run.result.then(
    () => {
      throw new Error("expected the download to fail");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

const poolFiles = () => readdirSync(pool).sort();

describe("downloadImage", () => {
  test("downloads an ISO, heartbeating progress, into <imageId>.iso", async () => {
    server.route("/alpine.iso", { body: images.iso });
    const run = download({ url: server.url("/alpine.iso"), kind: "iso" });
    const result = await run.result;
    expect(result).toEqual({
      path: path.join(pool, "img-1.iso"),
      sizeBytes: images.iso.length,
      checksum: { algorithm: "sha256", value: sha256(images.iso) },
      format: "iso",
      sourceFormat: "iso",
    });
    expect(readFileSync(result.path).equals(images.iso)).toBe(true);
    expect(poolFiles()).toEqual(["img-1.iso"]);
    expect(run.heartbeats.at(-1)).toMatchObject({ bytesDone: images.iso.length, bytesTotal: images.iso.length });
  });

  test("follows redirects and verifies an expected sha512 of a qcow2", async () => {
    server.route("/qcow2", { body: images.qcow2 });
    server.route("/r1", { body: Buffer.alloc(0), redirectTo: "/r2" });
    server.route("/r2", { body: Buffer.alloc(0), redirectTo: server.url("/qcow2") });
    const expectedChecksum = { algorithm: "sha512" as const, value: sha512(images.qcow2).toUpperCase() };
    const result = await download({ url: server.url("/r1"), expectedChecksum }).result;
    expect(result).toMatchObject({ path: path.join(pool, "img-1.qcow2"), format: "qcow2", checksum: { algorithm: "sha512", value: sha512(images.qcow2) } });
    expect(poolFiles()).toEqual(["img-1.qcow2"]);
  });

  test("converts a raw disk to qcow2 and is idempotent afterwards", async () => {
    server.route("/disk.raw", { body: images.raw });
    const expectedChecksum = { algorithm: "sha256" as const, value: sha256(images.raw) };
    const result = await download({ url: server.url("/disk.raw"), expectedChecksum }).result;
    expect(result).toMatchObject({ path: path.join(pool, "img-1.qcow2"), format: "qcow2", sourceFormat: "raw", checksum: expectedChecksum });
    execFileSync("qemu-img", ["compare", "-q", "-f", "raw", "-F", "qcow2", path.join(fixtures, "small.raw"), result.path]);
    expect(poolFiles()).toEqual([".img-1.source.json", "img-1.qcow2"]);

    server.resetCount("/disk.raw");
    const again = await download({ url: server.url("/disk.raw"), expectedChecksum }).result;
    expect(again).toEqual(result);
    expect(server.bytesServed("/disk.raw")).toBe(0);
  });

  test("an existing finished image with the expected checksum is returned without downloading", async () => {
    server.route("/again.iso", { body: images.iso });
    const expectedChecksum = { algorithm: "sha256" as const, value: sha256(images.iso) };
    const first = await download({ url: server.url("/again.iso"), kind: "iso", expectedChecksum }).result;
    server.resetCount("/again.iso");
    expect(await download({ url: server.url("/again.iso"), kind: "iso", expectedChecksum }).result).toEqual(first);
    expect(server.bytesServed("/again.iso")).toBe(0);
  });

  test("resumes after a cut-off body from the last heartbeat, fetching only the rest", async () => {
    const size = images.bigRaw.length;
    server.route("/big.raw", { body: images.bigRaw, ranges: true, etag: '"v1"', cutAt: size - MiB / 2 });
    const first = download({ url: server.url("/big.raw") });
    const err = await failure(first);
    expect(err).toMatchObject({ type: "DOWNLOAD_FAILED", nonRetryable: false });
    expect(poolFiles()).toEqual([".partial-img-1"]);
    const last = first.heartbeats.at(-1) as DownloadProgress;
    expect(last.bytesDone).toBeGreaterThan(size * 0.9);
    expect(last.validator).toBe('"v1"');

    server.route("/big.raw", { body: images.bigRaw, ranges: true, etag: '"v1"' });
    const second = download({ url: server.url("/big.raw"), expectedChecksum: { algorithm: "sha256", value: sha256(images.bigRaw) } }, last);
    const result = await second.result;
    expect(server.bytesServed("/big.raw")).toBeLessThan(size / 10);
    expect(second.heartbeats.length).toBeGreaterThan(0);
    expect(Math.min(...second.heartbeats.map((h) => h.bytesDone))).toBeGreaterThanOrEqual(last.bytesDone);
    expect(result).toMatchObject({ format: "qcow2", sourceFormat: "raw", checksum: { value: sha256(images.bigRaw) } });
    execFileSync("qemu-img", ["compare", "-q", "-f", "raw", "-F", "qcow2", path.join(fixtures, "big.raw"), result.path]);
    expect(poolFiles()).toEqual([".img-1.source.json", "img-1.qcow2"]);
  });

  test("starts over when the server ignores the Range, or the file changed upstream", async () => {
    const size = images.bigRaw.length;
    for (const second of [{ ranges: false }, { ranges: true, etag: '"v2"' }]) {
      pool = mkdtempSync(path.join(root, "pool-"));
      server.route("/big.raw", { body: images.bigRaw, ranges: true, etag: '"v1"', cutAt: size / 2 });
      const first = download({ url: server.url("/big.raw") });
      await failure(first);
      server.route("/big.raw", { body: images.bigRaw, ...second });
      const result = await download({ url: server.url("/big.raw") }, first.heartbeats.at(-1)).result;
      expect(server.bytesServed("/big.raw")).toBe(size);
      expect(result.checksum.value).toBe(sha256(images.bigRaw));
    }
  });

  test("a slow mirror heartbeats rising progress with a rate", async () => {
    server.route("/slow.qcow2", { body: images.qcow2, chunkDelayMs: 15 });
    const run = download({ url: server.url("/slow.qcow2") });
    await run.result;
    const progress = run.heartbeats.filter((h) => h.phase === "downloading" && h.bytesDone > 0);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.some((h) => h.bytesPerSecond > 0)).toBe(true);
    expect(progress.map((h) => h.bytesDone)).toEqual([...progress.map((h) => h.bytesDone)].sort((a, b) => a - b));
  });

  test("cancellation aborts the transfer within a heartbeat and leaves no file", async () => {
    server.route("/slow.raw", { body: images.bigRaw, chunkDelayMs: 50 });
    const run = download({ url: server.url("/slow.raw") });
    run.env.on("heartbeat", (d: DownloadProgress) => {
      if (d.bytesDone > 0) run.env.cancel();
    });
    const started = Date.now();
    await expect(run.result).rejects.toBeInstanceOf(CancelledFailure);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(poolFiles()).toEqual([]);
  });

  test("a heartbeat timeout keeps the partial file for the retry to resume", async () => {
    server.route("/slow.raw", { body: images.bigRaw, chunkDelayMs: 50 });
    const run = download({ url: server.url("/slow.raw") });
    run.env.on("heartbeat", (d: DownloadProgress) => {
      if (d.bytesDone > 0) run.env.cancel("TIMED_OUT", new ActivityCancellationDetails({ timedOut: true }));
    });
    await expect(run.result).rejects.toBeInstanceOf(CancelledFailure);
    expect(poolFiles()).toEqual([".partial-img-1"]);
  });

  test.each([
    ["a wrong checksum", { body: "raw" }, { expectedChecksum: { algorithm: "sha256" as const, value: "0".repeat(64) } }, "CHECKSUM_MISMATCH"],
    ["a Content-Length shorter than the file", { body: "raw", declaredLength: MiB }, { checksumOf: "raw" }, "CHECKSUM_MISMATCH"],
    ["an HTML page instead of an ISO", { body: "html" }, { kind: "iso" as const }, "CONTENT_TYPE_MISMATCH"],
    ["an HTML page instead of a disk", { body: "html" }, {}, "CONTENT_TYPE_MISMATCH"],
    ["an ISO where a disk is expected", { body: "iso" }, {}, "CONTENT_TYPE_MISMATCH"],
    ["a qcow2 with a backing file", { body: "backed" }, {}, "CONTENT_TYPE_MISMATCH"],
    ["a Content-Length above maxBytes", { body: "raw" }, { maxBytes: MiB }, "CONTENT_TOO_LARGE"],
    ["a chunked body growing past maxBytes", { body: "raw", declaredLength: null }, { maxBytes: MiB }, "CONTENT_TOO_LARGE"],
    ["a 404", { body: "html", status: 404 }, {}, "DOWNLOAD_FAILED"],
  ] as const)("%s fails permanently with its code and leaves no file", async (_name, route, input, code) => {
    const { body, ...rest } = route;
    server.route("/bad", { body: images[body], ...rest });
    const { checksumOf, ...inputRest } = input as { checksumOf?: keyof typeof images };
    const expectedChecksum = checksumOf ? { algorithm: "sha256" as const, value: sha256(images[checksumOf]) } : undefined;
    const err = await failure(download({ url: server.url("/bad"), ...(expectedChecksum ? { expectedChecksum } : {}), ...inputRest }));
    expect(err).toMatchObject({ type: code, nonRetryable: true });
    expect(poolFiles()).toEqual([]);
  });

  test("a wrong body fails fast, long before it has all arrived", async () => {
    server.route("/html", { body: images.html, chunkDelayMs: 5 });
    const err = await failure(download({ url: server.url("/html"), kind: "iso" }));
    expect(err.type).toBe("CONTENT_TYPE_MISMATCH");
    expect(server.bytesServed("/html")).toBeLessThan(images.html.length / 4);
  });

  test("a 503 and a body cut short of its Content-Length are retryable", async () => {
    server.route("/busy", { body: images.html, status: 503 });
    expect(await failure(download({ url: server.url("/busy") }))).toMatchObject({ type: "DOWNLOAD_FAILED", nonRetryable: false });
    server.route("/short", { body: images.raw, declaredLength: images.raw.length + MiB });
    expect(await failure(download({ url: server.url("/short") }))).toMatchObject({ type: "DOWNLOAD_FAILED", nonRetryable: false });
    expect(poolFiles()).toEqual([".partial-img-1"]);
  });

  test("a redirect loop and a non-http URL fail permanently", async () => {
    server.route("/loop", { body: Buffer.alloc(0), redirectTo: "/loop" });
    expect(await failure(download({ url: server.url("/loop") }))).toMatchObject({ type: "DOWNLOAD_FAILED", nonRetryable: true });
    expect(await failure(download({ url: "file:///etc/passwd" }))).toMatchObject({ type: "VALIDATION_FAILED" });
    expect(await failure(download({ url: server.url("/x"), imageId: "../escape" }))).toMatchObject({ type: "VALIDATION_FAILED" });
  });

  describe("stalled transfers fail DOWNLOAD_STALLED instead of holding the slot", () => {
    /** A short window for the test (minutes in production): 4 s of under 2 KiB is a stall. */
    const stall = { windowMs: 4_000, minBytes: 2048, idleMs: 3_000, retries: 0 };
    const stallingActivities = createImageDownloadActivities({ heartbeatIntervalMs: 100, stall, fetchPolicy });

    function stallingDownload(url: string, heartbeatDetails?: DownloadProgress, policy = stallingActivities): Run {
      const env = new MockActivityEnvironment(heartbeatDetails ? { heartbeatDetails } : {}, { logger: quietLogger });
      const heartbeats: DownloadProgress[] = [];
      env.on("heartbeat", (d: DownloadProgress) => heartbeats.push(d));
      const input: DownloadImageInput = { imageId: "img-1", targetDir: pool, kind: "iso", maxBytes: 64 * MiB, source: { kind: "url", url } };
      return { env, heartbeats, result: env.run(policy.downloadImage, input) };
    }

    test("a byte a second: below the floor, failed within the window, its rate shown as the trickle it is", async () => {
      server.route("/trickle.iso", { body: images.iso, chunkBytes: 1, chunkDelayMs: 1_000 });
      const started = Date.now();
      const run = stallingDownload(server.url("/trickle.iso"));
      const err = await failure(run);
      expect(err).toMatchObject({ type: "DOWNLOAD_STALLED", nonRetryable: true, message: expect.stringContaining("below the floor") });
      expect(Date.now() - started).toBeLessThan(stall.windowMs + 4_000);
      // Measured: a few bytes over seconds, never thousands per second from two beats a moment apart.
      expect(Math.max(...run.heartbeats.map((h) => h.bytesPerSecond))).toBeLessThanOrEqual(3);
      expect(poolFiles()).toEqual([]);
    });

    test("a server gone silent after the headers, and one that never answers, stall at the idle limit", async () => {
      server.route("/silent.iso", { body: images.iso, stallAt: 64 * 1024 });
      expect(await failure(stallingDownload(server.url("/silent.iso")))).toMatchObject({ type: "DOWNLOAD_STALLED", message: expect.stringContaining("no data for 3 s") });
      const mute = net.createServer(() => undefined); // accepts, then says nothing
      await listenInNamespace(testNetwork(), mute);
      try {
        const url = `http://${testNetwork().namespaceAddress}:${(mute.address() as AddressInfo).port}/x.iso`;
        expect(await failure(stallingDownload(url))).toMatchObject({ type: "DOWNLOAD_STALLED", message: expect.stringContaining("no response") });
      } finally {
        mute.close();
      }
      expect(poolFiles()).toEqual([]);
    });

    test("stalls are retried as many times as the policy says, resuming, then fail for good", async () => {
      const retrying = createImageDownloadActivities({ heartbeatIntervalMs: 100, stall: { ...stall, retries: 1 }, fetchPolicy });
      server.route("/stall-once.iso", { body: images.iso, ranges: true, etag: '"s1"', stallAt: 128 * 1024 });
      const first = stallingDownload(server.url("/stall-once.iso"), undefined, retrying);
      expect(await failure(first)).toMatchObject({ type: "DOWNLOAD_STALLED", nonRetryable: false });
      const last = first.heartbeats.at(-1)!;
      expect(last).toMatchObject({ stalls: 1, bytesDone: 128 * 1024 });
      expect(poolFiles()).toEqual([".partial-img-1"]);
      // The retry resumes from the synced bytes; stalling again exhausts the retries.
      const second = stallingDownload(server.url("/stall-once.iso"), last, retrying);
      expect(await failure(second)).toMatchObject({ type: "DOWNLOAD_STALLED", nonRetryable: true, message: expect.stringContaining("stalled 2 times") });
      expect(poolFiles()).toEqual([]);
    });
  });

  test("removePartialDownload removes leftovers, never the finished image, and is idempotent", async () => {
    for (const name of [".partial-img-1", ".converting-img-1.qcow2", "img-1.raw", "img-1.qcow2", "other.raw"]) writeFileSync(path.join(pool, name), "x");
    const env = new MockActivityEnvironment({}, { logger: quietLogger });
    await env.run(activities.removePartialDownload, "img-1", pool);
    await env.run(activities.removePartialDownload, "img-1", pool);
    expect(poolFiles()).toEqual(["img-1.qcow2", "other.raw"]);
    expect(existsSync(path.join(pool, ".partial-img-1"))).toBe(false);
  });
});
