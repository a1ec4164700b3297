import { permanentFailure } from "../../common/errors";
import { runTool } from "../../common/exec";
import type { ImageFormat } from "./content-type";

/**
 * qemu-img parses untrusted headers here, so `info` runs under prlimit (memory and CPU caps, as
 * OpenStack does): a crafted image must not exhaust the host.
 */
const INFO_LIMITS = ["--as=1073741824", "--cpu=30"];
const INFO_TIMEOUT_MS = 60_000;

interface QemuImageInfo {
  format?: string;
  encrypted?: boolean;
  "backing-filename"?: string;
  "format-specific"?: { data?: { "data-file"?: string; extents?: Array<{ filename?: string }> } };
}

/**
 * Refuses a downloaded image that reads anything but itself: a qcow2 backing file or external
 * data file, or a vmdk extent in another file, would let a guest read arbitrary host files (other
 * VMs' disks). Encrypted images are refused too: nothing could boot them.
 */
export async function assertSelfContained(path: string, format: ImageFormat): Promise<void> {
  if (format === "raw" || format === "iso") return; // no header that could name another file
  const { stdout } = await runTool(
    "prlimit",
    [...INFO_LIMITS, "--", "qemu-img", "info", "--output=json", "-f", format, path],
    { timeoutMs: INFO_TIMEOUT_MS, errorCode: "CONTENT_TYPE_MISMATCH" },
  );
  const info = JSON.parse(stdout) as QemuImageInfo;
  const reject = (why: string) => permanentFailure("CONTENT_TYPE_MISMATCH", `the ${format} image ${why}`);
  if (info.format !== format) throw reject(`reads as ${String(info.format)}`);
  if (info["backing-filename"] !== undefined) throw reject("has a backing file");
  if (info.encrypted) throw reject("is encrypted");
  const data = info["format-specific"]?.data;
  if (data?.["data-file"] !== undefined) throw reject("has an external data file");
  if (data?.extents?.some((extent) => extent.filename !== path)) throw reject("has extents in other files");
}

/** Writes `target` as a qcow2 copy of `source`; the source format is given, never probed. */
export async function convertToQcow2(source: string, sourceFormat: ImageFormat, target: string, timeoutMs: number): Promise<void> {
  await runTool("qemu-img", ["convert", "-q", "-f", sourceFormat, "-O", "qcow2", source, target], {
    timeoutMs,
    errorCode: "STORAGE_ERROR",
  });
}
