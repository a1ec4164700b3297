/**
 * Image download throughput: a 1 GiB file from a local HTTP server, through the download activity
 * (sha256 hashing, content-type probe, periodic datasync and heartbeats, final fsync and rename)
 * against `curl -o` of the same file to the same directory, alternating, in one run. Goal: the
 * activity at >= 0.9x curl.
 *
 *   npx tsx bench/image-download.bench.ts [sizeMiB=1024] [rounds=3]
 *
 * The server is a separate Node process streaming the file from disk, so it competes with neither
 * client for an event loop. It runs in a network namespace of its own (test/support/test-network.ts)
 * whose /30 the activity's fetch policy admits: downloads never reach loopback, and curl takes the
 * same veth path, so the ratio compares like with like. The file is random bytes with an ISO 9660 signature at 0x8001: it
 * passes the ISO probe, so no qemu-img conversion blurs the transfer figures.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rm } from "node:fs/promises";
import path from "node:path";
import { MockActivityEnvironment } from "@temporalio/testing";
import { DefaultLogger } from "@temporalio/worker";
import { createImageDownloadActivities, type DownloadedImage, type DownloadImageInput } from "../activities/images/download";
import { DEFAULT_FETCH_POLICY } from "../activities/images/http-get";
import { runCommand } from "../common/exec";
import { parseFetchAllowList } from "../common/fetch-policy";
import { BENCH_NETWORK, createNamespaceNetwork, removeNamespaceNetwork } from "../test/support/test-network";

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 1024);
const rounds = Number(process.argv[3] ?? 3);
const workDir = path.resolve(__dirname, "../.data/bench-image-download");

/** Random content with the ISO 9660 primary volume descriptor magic where the probe looks. */
async function makeSourceFile(file: string): Promise<string> {
  const handle = await open(file, "w");
  const hash = createHash("sha256");
  const chunk = Buffer.alloc(16 * MiB);
  for (let offset = 0; offset < sizeMiB * MiB; offset += chunk.length) {
    randomFillSync(chunk);
    if (offset === 0) chunk.write("\x01CD001", 0x8000, "latin1");
    hash.update(chunk);
    await handle.write(chunk);
  }
  await handle.close();
  return hash.digest("hex");
}

// A static file server in its own process: 1 MiB reads, Content-Length, no Range needed here.
const SERVER_SOURCE = `
const http = require("node:http"), fs = require("node:fs");
const file = process.argv[1];
const server = http.createServer((req, res) => {
  const size = fs.statSync(file).size;
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
  fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
});
server.listen(0, process.argv[2], () => process.stdout.write(String(server.address().port) + "\\n"));
`;

function startServer(file: string): Promise<{ child: ChildProcess; url: string }> {
  const address = BENCH_NETWORK.namespaceAddress;
  const child = spawn("ip", ["netns", "exec", BENCH_NETWORK.namespace, process.execPath, "-e", SERVER_SOURCE, file, address], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout!.once("data", (data: Buffer) => resolve({ child, url: `http://${address}:${data.toString().trim()}/image.iso` }));
    child.once("error", reject);
  });
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const mibPerSecond = (seconds: number) => sizeMiB / seconds;
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

async function main(): Promise<void> {
  await rm(workDir, { recursive: true, force: true });
  const targetDir = path.join(workDir, "pool");
  await mkdir(targetDir, { recursive: true });
  const source = path.join(workDir, "image.iso");
  console.log(`making a ${sizeMiB} MiB source file...`);
  const digest = await makeSourceFile(source);
  // Warm the page cache so neither client pays for the first read of the source.
  for await (const _ of createReadStream(source, { highWaterMark: 16 * MiB }));
  createNamespaceNetwork(BENCH_NETWORK);
  const { child, url } = await startServer(source);
  const activities = createImageDownloadActivities({ fetchPolicy: { ...DEFAULT_FETCH_POLICY, allow: parseFetchAllowList(BENCH_NETWORK.cidr) } });
  const logger = new DefaultLogger("ERROR");

  const curlTimes: number[] = [];
  const activityTimes: number[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const curlOut = path.join(targetDir, "curl.out");
      curlTimes.push(await timed(() => runCommand("curl", ["-sS", "--fail", "-o", curlOut, url], { timeoutMs: 600_000 })));
      await rm(curlOut, { force: true });

      const imageId = `bench-${round}`;
      const env = new MockActivityEnvironment({}, { logger });
      activityTimes.push(
        await timed(async () => {
          const input: DownloadImageInput = {
            imageId,
            source: { kind: "url", url },
            targetDir,
            kind: "iso",
            maxBytes: 2 * sizeMiB * MiB,
            expectedChecksum: { algorithm: "sha256", value: digest },
          };
          const result: DownloadedImage = await env.run(activities.downloadImage, input);
          if (result.checksum.value !== digest) throw new Error("checksum differs");
        }),
      );
      await rm(path.join(targetDir, `${imageId}.iso`), { force: true });
      console.log(`round ${round}: curl ${mibPerSecond(curlTimes.at(-1)!).toFixed(0)} MiB/s, activity ${mibPerSecond(activityTimes.at(-1)!).toFixed(0)} MiB/s`);
    }
  } finally {
    child.kill();
    removeNamespaceNetwork(BENCH_NETWORK);
    await rm(workDir, { recursive: true, force: true });
  }
  const curl = mibPerSecond(mean(curlTimes));
  const activity = mibPerSecond(mean(activityTimes));
  console.log(`\n${sizeMiB} MiB over a veth pair, ${rounds} rounds, mean throughput:`);
  console.log(`  curl -o                         ${curl.toFixed(0)} MiB/s`);
  console.log(`  download activity (sha256 on)   ${activity.toFixed(0)} MiB/s`);
  console.log(`  ratio activity / curl           ${(activity / curl).toFixed(2)}x (goal >= 0.9x)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
