import { ApplicationFailure } from "@temporalio/common";
import { MockActivityEnvironment } from "@temporalio/testing";
import { DefaultLogger } from "@temporalio/worker";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { createImageDownloadActivities, type DownloadedImage, type DownloadImageInput } from "../../activities/images/download";
import { DEFAULT_STALL_POLICY } from "../../activities/images/transfer-meter";
import { DEFAULT_FETCH_POLICY, type FetchPolicy, type Resolver } from "../../activities/images/http-get";
import { addressClass, parseFetchAllowList, refusedBeforeResolving } from "../../common/fetch-policy";
import { listenInNamespace, testNetwork } from "../support/test-network";
import { ImageServer } from "./image-server";

/**
 * The outbound fetch policy of the download activity, against real sockets: the tests' web server
 * in its namespace (admitted by the allow-list), and bait servers on loopback that must never see
 * a request. DNS is the one thing scripted (a Resolver), to play a rebinding server.
 */
const quietLogger = new DefaultLogger("ERROR");
const network = testNetwork();
const server = new ImageServer();
let root: string;
let pool: string;
let iso: Buffer;

/** A web server on a loopback address that counts what reaches it: the target an attacker wants read. */
class Bait {
  requests = 0;
  private readonly server = http.createServer((_req, res) => {
    this.requests += 1;
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(iso);
  });
  constructor(readonly host: string) {}
  start = () => new Promise<void>((resolve) => this.server.listen(0, this.host, resolve));
  stop = () => new Promise<void>((resolve) => (this.server.closeAllConnections(), this.server.close(() => resolve())));
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }
  url(p = "/secret.iso"): string {
    return `http://${this.host.includes(":") ? `[${this.host}]` : this.host}:${this.port}${p}`;
  }
}
const bait4 = new Bait("127.0.0.1");
const bait6 = new Bait("::1");

beforeAll(async () => {
  root = mkdtempSync(path.join(__dirname, "../../.data/test-fetch-policy-"));
  mkdirSync(path.join(root, "content"));
  writeFileSync(path.join(root, "content", "payload.bin"), randomBytes(64 * 1024));
  execFileSync("genisoimage", ["-quiet", "-o", path.join(root, "small.iso"), "-V", "POLICY", path.join(root, "content")]);
  iso = readFileSync(path.join(root, "small.iso"));
  await Promise.all([server.start(), bait4.start(), bait6.start()]);
  server.route("/ok.iso", { body: iso });
});

afterAll(async () => {
  await Promise.all([server.stop(), bait4.stop(), bait6.stop()]);
  rmSync(root, { recursive: true, force: true });
});

beforeEach(() => {
  bait4.requests = 0;
  bait6.requests = 0;
});

/** The policy of a host whose operator listed the test network; overrides per test. */
function policy(overrides: Partial<FetchPolicy> = {}): FetchPolicy {
  return { ...DEFAULT_FETCH_POLICY, allow: parseFetchAllowList(network.cidr), connectTimeoutMs: 2_000, ...overrides };
}

/** Into a pool of its own: an image already in the pool would be returned without fetching. */
async function download(url: string, fetchPolicy = policy()): Promise<DownloadedImage> {
  pool = mkdtempSync(path.join(root, "pool-"));
  const activities = createImageDownloadActivities({ heartbeatIntervalMs: 50, stall: { ...DEFAULT_STALL_POLICY, idleMs: 5_000 }, fetchPolicy });
  const input: DownloadImageInput = { imageId: "img-1", targetDir: pool, kind: "iso", maxBytes: 64 * 1024 * 1024, source: { kind: "url", url } };
  return new MockActivityEnvironment({}, { logger: quietLogger }).run(activities.downloadImage, input);
}

async function refusal(url: string, fetchPolicy?: FetchPolicy): Promise<ApplicationFailure> {
  const err = await download(url, fetchPolicy).then(
    () => new Error(`${url} was downloaded`),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("address classes", () => {
  test.each([
    ["127.0.0.1", "refused"],
    ["127.255.0.9", "refused"],
    ["::1", "refused"],
    ["169.254.169.254", "refused"],
    ["fe80::1", "refused"],
    ["0.0.0.0", "refused"],
    ["::", "refused"],
    ["224.0.0.251", "refused"],
    ["ff02::1", "refused"],
    ["255.255.255.255", "refused"],
    ["240.0.0.1", "refused"],
    ["::ffff:127.0.0.1", "refused"],
    ["::ffff:a9fe:a9fe", "refused"],
    ["64:ff9b::7f00:1", "refused"],
    ["2002:7f00:1::1", "refused"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "refused"],
    ["10.1.2.3", "private"],
    ["172.16.0.1", "private"],
    ["192.168.1.1", "private"],
    ["100.64.0.1", "private"],
    ["fd00::2", "private"],
    ["::ffff:10.0.0.1", "private"],
    ["192.0.2.2", "private"],
    ["8.8.8.8", "public"],
    ["2606:4700:4700::1111", "public"],
    ["::ffff:8.8.8.8", "public"],
  ])("%s is %s", (address, expected) => {
    expect(addressClass(address)).toBe(expected);
  });

  test("literal URLs the API can refuse before anything resolves", () => {
    const allow = parseFetchAllowList("10.213.0.0/16, mirror.corp.example");
    const refused = (url: string) => refusedBeforeResolving(new URL(url), allow);
    for (const url of ["http://127.0.0.1:8233/", "http://[::1]/x", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://0x7f.1/", "http://2130706433/", "http://localhost/", "http://a.localhost/", "http://10.9.9.9/", "http://[fe80::1]/"]) {
      expect([url, refused(url)]).toEqual([url, true]);
    }
    for (const url of ["http://10.213.4.2/x.iso", "https://example.org/x.iso", "http://mirror.corp.example/x.iso", "http://8.8.8.8/"]) {
      expect([url, refused(url)]).toEqual([url, false]);
    }
    expect(() => parseFetchAllowList("10.0.0.0/33")).toThrow(/QX_FETCH_ALLOW/);
  });
});

describe("the download activity under the fetch policy", () => {
  test("the allow-listed test network is reached: every download test exercises the policy", async () => {
    const result = await download(server.url("/ok.iso"));
    expect(result.checksum.value).toBe(sha256(iso));
  });

  test.each([
    ["127.0.0.1 (the Temporal UI, the API...)", () => bait4.url()],
    ["[::1]", () => bait6.url()],
    ["localhost", () => `http://localhost:${bait4.port}/secret.iso`],
    ["the metadata address", () => "http://169.254.169.254/latest/meta-data/"],
    ["IPv4-mapped loopback", () => `http://[::ffff:127.0.0.1]:${bait4.port}/secret.iso`],
  ])("%s is refused before any connection", async (_what, url) => {
    expect(await refusal(url())).toMatchObject({ type: "URL_NOT_ALLOWED", nonRetryable: true });
    expect(bait4.requests + bait6.requests).toBe(0);
    expect(readdirSync(pool)).toEqual([]);
  });

  test("a redirect to loopback or the metadata service is refused at the hop", async () => {
    for (const target of [bait4.url(), bait6.url(), "http://169.254.169.254/latest/api/token"]) {
      server.route("/hop.iso", { body: Buffer.alloc(0), redirectTo: target });
      expect(await refusal(server.url("/hop.iso"))).toMatchObject({ type: "URL_NOT_ALLOWED" });
    }
    expect(bait4.requests + bait6.requests).toBe(0);
  });

  test("a private network not on the allow-list is refused", async () => {
    expect(await refusal(server.url("/ok.iso"), policy({ allow: parseFetchAllowList("") }))).toMatchObject({ type: "URL_NOT_ALLOWED" });
    expect(await refusal(server.url("/ok.iso"), policy({ allow: parseFetchAllowList("10.99.0.0/16") }))).toMatchObject({ type: "URL_NOT_ALLOWED" });
  });

  test("names: resolved, judged and pinned by the connection's own lookup", async () => {
    const port = new URL(server.url("/")).port;
    const calls: string[] = [];
    /** A DNS server that answers what it was told to, in turn (a rebinding attacker's). */
    const scripted = (...answers: string[][]): Resolver => async (name) => {
      calls.push(name);
      const answer = answers[Math.min(calls.length - 1, answers.length - 1)]!;
      return answer.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    };
    // A listed name admits the private address it resolves to.
    const byName = policy({ allow: parseFetchAllowList("mirror.test"), resolve: scripted([network.namespaceAddress]) });
    expect((await download(`http://mirror.test:${port}/ok.iso`, byName)).checksum.value).toBe(sha256(iso));
    // An unlisted one does not.
    calls.length = 0;
    const unlisted = policy({ allow: parseFetchAllowList(""), resolve: scripted([network.namespaceAddress]) });
    expect(await refusal(`http://other.test:${port}/ok.iso`, unlisted)).toMatchObject({ type: "URL_NOT_ALLOWED" });
    // An answer mixing loopback with an allowed address: only the checked one is connected to.
    calls.length = 0;
    server.resetCount("/ok.iso");
    const mixed = policy({ resolve: scripted(["127.0.0.1", network.namespaceAddress]) });
    expect((await download(`http://mixed.test:${port}/ok.iso`, mixed)).checksum.value).toBe(sha256(iso));
    expect(server.bytesServed("/ok.iso")).toBe(iso.length);
    // Rebinding: an allowed answer first, loopback next. The redirect's connection asks again and is refused.
    calls.length = 0;
    server.route("/rebind.iso", { body: Buffer.alloc(0), redirectTo: `http://rebind.test:${bait4.port}/secret.iso` });
    const rebinding = policy({ allow: parseFetchAllowList(`${network.cidr},rebind.test`), resolve: scripted([network.namespaceAddress], ["127.0.0.1"]) });
    expect(await refusal(`http://rebind.test:${port}/rebind.iso`, rebinding)).toMatchObject({ type: "URL_NOT_ALLOWED" });
    expect(calls).toEqual(["rebind.test", "rebind.test"]);
    expect(bait4.requests).toBe(0);
  });

  test("a closed port and a resetting server fail fast, after a bounded number of tries, with the same answer", async () => {
    // A port of the namespace's address that nothing listens on any more.
    const probe = net.createServer();
    await listenInNamespace(network, probe);
    const closed = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    let connections = 0;
    const resetter = net.createServer((socket) => {
      connections += 1;
      socket.resetAndDestroy();
    });
    await listenInNamespace(network, resetter);
    const resetPort = (resetter.address() as AddressInfo).port;
    try {
      const started = Date.now();
      const refusedErr = await refusal(`http://${network.namespaceAddress}:${closed}/x.iso`);
      const resetErr = await refusal(`http://${network.namespaceAddress}:${resetPort}/x.iso`);
      expect(Date.now() - started).toBeLessThan(15_000);
      for (const [err, port] of [[refusedErr, closed], [resetErr, resetPort]] as const) {
        expect(err).toMatchObject({ type: "DOWNLOAD_FAILED", nonRetryable: true, message: `could not connect to http://${network.namespaceAddress}:${port}` });
      }
      expect(connections).toBe(DEFAULT_FETCH_POLICY.connectAttempts);
    } finally {
      await new Promise((resolve) => resetter.close(resolve));
    }
  });
});
