import { CommandError, runCommand } from "../../common/exec";
import { permanentFailure, transientFailure } from "../../common/errors";
import { convertStreamed } from "./qemu-img-stream";

/**
 * qemu-img, the one tool that reads and writes qcow2 for every file-based pool. `location` is what
 * qemu opens: an absolute path (dir pools, mounted NFS) or an nfs:// URL (libnfs, no mount).
 */

export interface QemuSnapshot {
  name: string;
  "date-sec": number;
  "vm-state-size": number;
}

export interface QemuImageInfo {
  filename: string;
  format: string;
  "virtual-size": number;
  /** Absent over nfs:// for some servers; callers treat it as unknown (0). */
  "actual-size"?: number;
  "backing-filename"?: string;
  "full-backing-filename"?: string;
  "backing-filename-format"?: string;
  snapshots?: QemuSnapshot[];
  encrypted?: boolean;
  "format-specific"?: { data?: { "data-file"?: string } };
}

const QUICK_TIMEOUT_MS = 60_000;

/** qemu locks images it has open; a running guest's disk cannot be changed underneath it. */
function failureFor(err: CommandError) {
  if (err.timedOut) return transientFailure("COMMAND_TIMEOUT", err.message);
  if (/Failed to get "\w+" lock/.test(err.stderr)) return permanentFailure("VOLUME_IN_USE", err.message);
  return permanentFailure("STORAGE_ERROR", err.message);
}

async function qemuImg(args: string[]): Promise<string> {
  try {
    return (await runCommand("qemu-img", args, { timeoutMs: QUICK_TIMEOUT_MS })).stdout;
  } catch (err) {
    throw err instanceof CommandError ? failureFor(err) : err;
  }
}

/** Header facts only (no backing file is opened); -U so it also answers for a running guest's disk. */
export async function imageInfo(location: string): Promise<QemuImageInfo> {
  return JSON.parse(await qemuImg(["info", "-U", "--output=json", location])) as QemuImageInfo;
}

/** The image followed by its backing files, nearest first. */
export async function backingChain(location: string): Promise<QemuImageInfo[]> {
  return JSON.parse(await qemuImg(["info", "-U", "--backing-chain", "--output=json", location])) as QemuImageInfo[];
}

export interface Backing {
  location: string;
  format: string;
}

export async function createImage(location: string, sizeBytes: number, backing?: Backing): Promise<void> {
  const backingArgs = backing ? ["-b", backing.location, "-F", backing.format] : [];
  await qemuImg(["create", "-q", "-f", "qcow2", ...backingArgs, location, String(sizeBytes)]);
}

export async function resizeImage(location: string, sizeBytes: number): Promise<void> {
  await qemuImg(["resize", "-q", "-f", "qcow2", location, String(sizeBytes)]);
}

export async function snapshotCommand(op: "create" | "delete" | "apply", location: string, name: string): Promise<void> {
  const flag = { create: "-c", delete: "-d", apply: "-a" }[op];
  await qemuImg(["snapshot", "-q", flag, name, location]);
}

export interface ConvertRequest {
  source: string;
  sourceFormat: string;
  target: string;
  /** Copy the image as it was at this internal snapshot. */
  snapshot?: string;
  onPercent?: (percent: number) => void;
  signal?: AbortSignal;
}

/**
 * Writes `target` as a new qcow2 copy of `source`. Rejects with CANCELLED once `signal` aborts (after
 * qemu-img has exited): the caller must then discard the target, never publish it.
 */
export function convertImage(req: ConvertRequest): Promise<void> {
  const snapshotArgs = req.snapshot ? ["-l", `snapshot.name=${req.snapshot}`] : [];
  return convertStreamed({
    args: ["-f", req.sourceFormat, "-O", "qcow2", ...snapshotArgs, req.source, req.target],
    onPercent: req.onPercent ?? (() => undefined),
    ...(req.signal ? { signal: req.signal } : {}),
    errorCode: "STORAGE_ERROR",
    redact: [],
  });
}
