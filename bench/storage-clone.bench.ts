/**
 * Storage clone benchmark (not a test): on a local-dir pool, through the same backend the host
 * worker uses (activities/storage/local-dir.ts),
 *   1. CoW (linked) clone time of a 1 GiB and a 100 GiB volume: both sparse, so the goal is a
 *      flat time, the 100 GiB clone within 1.2x of the 1 GiB one;
 *   2. full-copy throughput of a volume holding data, against `qemu-img convert` of the same
 *      volume in the same run: goal >= 0.9x.
 *
 *   npx tsx bench/storage-clone.bench.ts            (QX_BENCH_DIR, QX_BENCH_DATA_MIB to change)
 */
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { createLocalDirBackend } from "../activities/storage/local-dir";
import { runCommand } from "../common/exec";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const CLONE_RUNS = 7;
const COPY_RUNS = 5;
const dataMiB = Number(process.env.QX_BENCH_DATA_MIB ?? 1024);
const dir = process.env.QX_BENCH_DIR ?? path.resolve(__dirname, "../.data", `bench-storage-${process.pid}`);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await action();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main(): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const pool = createLocalDirBackend({ root: dir });
  await pool.initPool();
  try {
    // 1. Linked clones: only a qcow2 header naming the base is written, whatever the size. The two
    // sizes are timed alternately, after a discarded warm-up of each, so host jitter (page cache,
    // another process) hits both alike; the medians are compared.
    const sizesGiB = [1, 100];
    const bases = new Map<number, string>();
    for (const sizeGiB of sizesGiB) {
      const base = randomUUID();
      await pool.createVolume({ volumeId: base, sizeBytes: sizeGiB * GiB, source: { kind: "empty" } });
      bases.set(sizeGiB, base);
    }
    const cloneRuns = new Map<number, number[]>(sizesGiB.map((size) => [size, []]));
    for (let i = -1; i < CLONE_RUNS; i++) {
      for (const sizeGiB of i % 2 === 0 ? sizesGiB : [...sizesGiB].reverse()) {
        const clone = randomUUID();
        const ms = await timed(() => pool.createVolume({ volumeId: clone, sizeBytes: sizeGiB * GiB, source: { kind: "clone", volumeId: bases.get(sizeGiB)! } }));
        if (i >= 0) cloneRuns.get(sizeGiB)!.push(ms);
        await pool.deleteVolume(clone);
      }
    }
    for (const base of bases.values()) await pool.deleteVolume(base);
    const cloneMs = Object.fromEntries(sizesGiB.map((size) => [`${size} GiB`, median(cloneRuns.get(size)!)]));

    // 2. Full copies of a volume with `dataMiB` of non-zero data (zeros would be skipped by both).
    const source = randomUUID();
    await pool.createVolume({ volumeId: source, sizeBytes: Math.max(GiB, dataMiB * MiB), source: { kind: "empty" } });
    const sourceFile = path.join(dir, `${source}.qcow2`);
    // qemu-io takes one buffer per request: fill in 256 MiB requests.
    const writes = Array.from({ length: Math.ceil(dataMiB / 256) }, (_, i) => ["-c", `write -P 0x5a ${i * 256}M ${Math.min(256, dataMiB - i * 256)}M`]);
    await runCommand("qemu-io", ["-f", "qcow2", ...writes.flat(), sourceFile], { timeoutMs: 600_000 });
    const backendRuns: number[] = [];
    const qemuImgRuns: number[] = [];
    const backendCopy = async () => {
      const copy = randomUUID();
      const ms = await timed(() => pool.copyVolume(source, copy, () => undefined));
      await pool.deleteVolume(copy);
      return ms;
    };
    const plainCopy = async () => {
      const plain = path.join(dir, "plain.qcow2");
      const ms = await timed(() => runCommand("qemu-img", ["convert", "-f", "qcow2", "-O", "qcow2", sourceFile, plain], { timeoutMs: 600_000 }));
      await rm(plain, { force: true });
      return ms;
    };
    // Each copy starts with no dirty pages of an earlier write still being flushed (sync), and the
    // two take turns going first: otherwise whichever runs right after the source was written
    // pays for its writeback.
    for (let i = 0; i < COPY_RUNS; i++) {
      for (const which of i % 2 === 0 ? ["backend", "plain"] : ["plain", "backend"]) {
        await runCommand("sync", [], { timeoutMs: 600_000 });
        if (which === "backend") backendRuns.push(await backendCopy());
        else qemuImgRuns.push(await plainCopy());
      }
    }
    await pool.deleteVolume(source);

    const clone1 = cloneMs["1 GiB"]!;
    const clone100 = cloneMs["100 GiB"]!;
    const backendMiBs = dataMiB / (median(backendRuns) / 1000);
    const qemuImgMiBs = dataMiB / (median(qemuImgRuns) / 1000);
    const rows = [
      ["CoW clone, 1 GiB volume", `${clone1.toFixed(1)} ms`, "", ""],
      ["CoW clone, 100 GiB volume", `${clone100.toFixed(1)} ms`, `${(clone100 / clone1).toFixed(2)}x of 1 GiB`, clone100 / clone1 <= 1.2 ? "ok (<= 1.2x)" : "MISSED (<= 1.2x)"],
      [`full copy, ${dataMiB} MiB of data (copyVolume)`, `${backendMiBs.toFixed(0)} MiB/s`, `${(backendMiBs / qemuImgMiBs).toFixed(2)}x of qemu-img`, backendMiBs / qemuImgMiBs >= 0.9 ? "ok (>= 0.9x)" : "MISSED (>= 0.9x)"],
      [`qemu-img convert, same volume`, `${qemuImgMiBs.toFixed(0)} MiB/s`, "", ""],
    ];
    console.log(`local-dir pool at ${dir}; medians of ${CLONE_RUNS} clones and ${COPY_RUNS} copies`);
    const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join("  "));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
