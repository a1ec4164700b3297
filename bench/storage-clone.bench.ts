/**
 * Storage clone benchmark (not a test): on a local-dir pool and on a Ceph RBD pool, through the same
 * backends the host worker uses (activities/storage/local-dir.ts, ceph-rbd.ts),
 *   1. CoW (linked) clone time of a 1 GiB and a 100 GiB volume: both sparse, so the goal is a
 *      flat time, the 100 GiB clone within 1.2x of the 1 GiB one;
 *   2. full-copy throughput of a volume holding data, against `qemu-img convert` of the same
 *      volume in the same run: goal >= 0.9x.
 *
 * The RBD part runs against the single-node cluster of scripts/services/ceph.sh (as
 * test/storage/ceph-rbd.test.ts does), started here when no ceph-mon runs and then stopped again.
 *
 *   npx tsx bench/storage-clone.bench.ts   (QX_BENCH_DIR, QX_BENCH_DATA_MIB, QX_CEPH_DIR to change;
 *                                           QX_BENCH_BACKENDS=local-dir,rbd picks the backends)
 */
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createCephRbdBackend } from "../activities/storage/ceph-rbd";
import { createLocalDirBackend } from "../activities/storage/local-dir";
import type { StorageBackend } from "../activities/storage/backend";
import { runCommand } from "../common/exec";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const CLONE_RUNS = 7;
const COPY_RUNS = 5;
const dataMiB = Number(process.env.QX_BENCH_DATA_MIB ?? 1024);
const backends = (process.env.QX_BENCH_BACKENDS ?? "local-dir,rbd").split(",");
const dir = process.env.QX_BENCH_DIR ?? path.resolve(__dirname, "../.data", `bench-storage-${process.pid}`);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const REPO = path.resolve(__dirname, "..");
const CEPH_DIR = process.env.QX_CEPH_DIR ?? path.join(REPO, ".data/ceph");
const CEPH_MONITOR = "127.0.0.1:6789";
const RBD_CLONE_RUNS = 5;
const RBD_COPY_RUNS = 3;

/**
 * 1. Linked clones of a sparse 1 GiB and 100 GiB volume. The two sizes are timed alternately, after
 * a discarded warm-up of each, so host jitter (page cache, another process) hits both alike; the
 * medians are compared. `newId` names every volume made, so a failed run's leftovers can be found.
 */
async function benchClones(pool: StorageBackend, runs: number, newId: () => string): Promise<Map<number, number>> {
  const sizesGiB = [1, 100];
  const bases = new Map<number, string>();
  for (const sizeGiB of sizesGiB) {
    const base = newId();
    await pool.createVolume({ volumeId: base, sizeBytes: sizeGiB * GiB, source: { kind: "empty" } });
    bases.set(sizeGiB, base);
  }
  const cloneRuns = new Map<number, number[]>(sizesGiB.map((size) => [size, []]));
  for (let i = -1; i < runs; i++) {
    for (const sizeGiB of i % 2 === 0 ? sizesGiB : [...sizesGiB].reverse()) {
      const clone = newId();
      const ms = await timed(() => pool.createVolume({ volumeId: clone, sizeBytes: sizeGiB * GiB, source: { kind: "clone", volumeId: bases.get(sizeGiB)! } }));
      if (i >= 0) cloneRuns.get(sizeGiB)!.push(ms);
      await pool.deleteVolume(clone);
    }
  }
  for (const base of bases.values()) await pool.deleteVolume(base);
  return new Map(sizesGiB.map((size) => [size, median(cloneRuns.get(size)!)]));
}

/**
 * 2. Full copies, one timed function per method (each makes and removes its own copy), taking turns
 * at going first. Each copy starts with no dirty pages of an earlier write still being flushed
 * (sync): otherwise whichever runs right after the source was written pays for its writeback.
 * Returns the median MiB/s of each method.
 */
async function benchCopies(methods: [string, () => Promise<number>][], runs: number): Promise<Map<string, number>> {
  const times = new Map<string, number[]>(methods.map(([name]) => [name, []]));
  for (let i = 0; i < runs; i++) {
    const order = [...methods.slice(i % methods.length), ...methods.slice(0, i % methods.length)];
    for (const [name, copy] of order) {
      await runCommand("sync", [], { timeoutMs: 600_000 });
      times.get(name)!.push(await copy());
    }
  }
  return new Map(methods.map(([name]) => [name, dataMiB / (median(times.get(name)!) / 1000)]));
}

function printTable(title: string, cloneMs: Map<number, number>, copyMiBs: Map<string, number>, backendMethod: string, baselines: string[]): void {
  const clone1 = cloneMs.get(1)!;
  const clone100 = cloneMs.get(100)!;
  const backendMiBs = copyMiBs.get(backendMethod)!;
  const rows = [
    ["CoW clone, 1 GiB volume", `${clone1.toFixed(1)} ms`, "", ""],
    ["CoW clone, 100 GiB volume", `${clone100.toFixed(1)} ms`, `${(clone100 / clone1).toFixed(2)}x of 1 GiB`, clone100 / clone1 <= 1.2 ? "ok (<= 1.2x)" : "MISSED (<= 1.2x)"],
    [`full copy, ${dataMiB} MiB of data (${backendMethod})`, `${backendMiBs.toFixed(0)} MiB/s`, "", ""],
  ];
  for (const baseline of baselines) {
    const ratio = backendMiBs / copyMiBs.get(baseline)!;
    rows.push([`${baseline}, same volume`, `${copyMiBs.get(baseline)!.toFixed(0)} MiB/s`, `copyVolume ${ratio.toFixed(3)}x of it`, ratio >= 0.9 ? "ok (>= 0.9x)" : "MISSED (>= 0.9x)"]);
  }
  console.log(title);
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join("  "));
}

async function benchLocalDir(): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const pool = createLocalDirBackend({ root: dir });
  await pool.initPool();
  try {
    const cloneMs = await benchClones(pool, CLONE_RUNS, () => randomUUID());

    // Full copies of a volume with `dataMiB` of non-zero data (zeros would be skipped by both).
    const source = randomUUID();
    await pool.createVolume({ volumeId: source, sizeBytes: Math.max(GiB, dataMiB * MiB), source: { kind: "empty" } });
    const sourceFile = path.join(dir, `${source}.qcow2`);
    // qemu-io takes one buffer per request: fill in 256 MiB requests.
    const writes = Array.from({ length: Math.ceil(dataMiB / 256) }, (_, i) => ["-c", `write -P 0x5a ${i * 256}M ${Math.min(256, dataMiB - i * 256)}M`]);
    await runCommand("qemu-io", ["-f", "qcow2", ...writes.flat(), sourceFile], { timeoutMs: 600_000 });
    const copyMiBs = await benchCopies(
      [
        [
          "copyVolume",
          async () => {
            const copy = randomUUID();
            const ms = await timed(() => pool.copyVolume(source, copy, () => undefined));
            await pool.deleteVolume(copy);
            return ms;
          },
        ],
        [
          "qemu-img convert",
          async () => {
            const plain = path.join(dir, "plain.qcow2");
            const ms = await timed(() => runCommand("qemu-img", ["convert", "-f", "qcow2", "-O", "qcow2", sourceFile, plain], { timeoutMs: 600_000 }));
            await rm(plain, { force: true });
            return ms;
          },
        ],
      ],
      COPY_RUNS,
    );
    await pool.deleteVolume(source);
    printTable(`local-dir pool at ${dir}; medians of ${CLONE_RUNS} clones and ${COPY_RUNS} copies`, cloneMs, copyMiBs, "copyVolume", ["qemu-img convert"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function benchRbd(): Promise<void> {
  const startedCeph = await runCommand("pgrep", ["-x", "ceph-mon"]).then(
    () => false,
    () => true,
  );
  if (startedCeph) await runCommand("bash", [path.join(REPO, "scripts/services/ceph.sh"), "start"], { timeoutMs: 170_000 });
  const workDir = await mkdtemp(path.join(os.tmpdir(), "qx-rbd-bench-"));
  const keyring = path.join(CEPH_DIR, "client.qx.keyring");
  const confPath = path.join(workDir, "client.conf");
  // initPool is not called: it only hands the key to libvirt (a secret), which no step here needs.
  const pool = createCephRbdBackend({
    pool: "rbd",
    monitors: [CEPH_MONITOR],
    user: "qx",
    keyring,
    secretUuid: randomUUID(),
    libvirtUri: "qemu:///system",
    confPath,
  });
  const prefix = `qxbench-${process.pid}-`;
  let seq = 0;
  const newId = () => `${prefix}${seq++}`;
  /** The rbd CLI as the backend's client (client.qx, same monitor), for the fill and the baseline. */
  const rbd = (args: string[]) =>
    runCommand("rbd", ["--conf", "/dev/null", "-m", CEPH_MONITOR, "--id", "qx", "--keyring", keyring, ...args], { timeoutMs: 600_000 });
  /** qemu's rbd filename: options after ':', with the ':' inside the monitor address escaped. */
  const qemuName = (image: string) => `rbd:rbd/${image}:mon_host=${CEPH_MONITOR.replace(":", "\\:")}:id=qx:keyring=${keyring}`;
  try {
    const cloneMs = await benchClones(pool, RBD_CLONE_RUNS, newId);

    // Full copies of an image with `dataMiB` of non-zero data written by `rbd bench` (sequential
    // 4 MiB writes of non-zero bytes, so every object exists: nothing for a copier to skip).
    const source = newId();
    await pool.createVolume({ volumeId: source, sizeBytes: Math.max(GiB, dataMiB * MiB), source: { kind: "empty" } });
    await rbd(["bench", "--io-type", "write", "--io-size", "4M", "--io-threads", "16", "--io-total", `${dataMiB}M`, "--io-pattern", "seq", `rbd/${source}`]);
    // Two baselines, both printed. `rbd cp` is the fairer one for this backend: copyVolume is
    // `rbd cp` of a hidden snapshot plus bookkeeping (snapshot create/remove, partial check, rename,
    // info/du), so against plain `rbd cp` of the same image the ratio isolates what the backend adds.
    // `qemu-img convert` (librbd reads and writes through qemu's block layer) is the named
    // baseline and what an operator would reach for otherwise; the goal is checked against both.
    const byBackend = async () => {
      const copy = newId();
      const ms = await timed(() => pool.copyVolume(source, copy, () => undefined));
      await pool.deleteVolume(copy);
      return ms;
    };
    const byRbdCp = async () => {
      const copy = newId();
      const ms = await timed(() => rbd(["cp", "--no-progress", `rbd/${source}`, `rbd/${copy}`]));
      await pool.deleteVolume(copy);
      return ms;
    };
    const byQemuImg = async () => {
      const copy = newId();
      const ms = await timed(() => runCommand("qemu-img", ["convert", "-f", "raw", "-O", "raw", qemuName(source), qemuName(copy)], { timeoutMs: 600_000 }));
      await pool.deleteVolume(copy);
      return ms;
    };
    const copyMiBs = await benchCopies(
      [
        ["copyVolume", byBackend],
        ["rbd cp", byRbdCp],
        ["qemu-img convert", byQemuImg],
      ],
      RBD_COPY_RUNS,
    );
    await pool.deleteVolume(source);
    printTable(
      `Ceph RBD pool rbd (single-node, ${CEPH_DIR}); medians of ${RBD_CLONE_RUNS} clones and ${RBD_COPY_RUNS} copies`,
      cloneMs,
      copyMiBs,
      "copyVolume",
      ["rbd cp", "qemu-img convert"],
    );
  } finally {
    try {
      // Whatever a failed run left: clones before their parents, so the hidden snapshots go first.
      const images = JSON.parse((await rbd(["ls", "--format", "json", "rbd"])).stdout) as string[];
      const ours = images.filter((image) => image.startsWith(prefix));
      for (const image of ours.filter((i) => i.includes("~"))) await rbd(["rm", "--no-progress", `rbd/${image}`]);
      const volumes = ours.filter((i) => !i.includes("~"));
      const withParent = new Set<string>();
      for (const image of volumes) {
        if ((await pool.volumeInfo(image))?.backingVolumeId) withParent.add(image);
      }
      for (const image of volumes.filter((i) => withParent.has(i))) await pool.deleteVolume(image);
      for (const image of volumes.filter((i) => !withParent.has(i))) await pool.deleteVolume(image);
    } finally {
      await rm(workDir, { recursive: true, force: true });
      if (startedCeph) await runCommand("bash", [path.join(REPO, "scripts/services/ceph.sh"), "stop"], { timeoutMs: 60_000 });
    }
  }
}

async function main(): Promise<void> {
  if (backends.includes("local-dir")) await benchLocalDir();
  if (backends.includes("rbd")) await benchRbd();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
