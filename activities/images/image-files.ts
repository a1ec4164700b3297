import { rm } from "node:fs/promises";
import path from "node:path";
import type { ImageFormat } from "./content-type";

/** qemu-img format names to file extensions ("vpc" is VHD). */
const EXTENSIONS: Record<ImageFormat, string> = { iso: "iso", qcow2: "qcow2", raw: "raw", vmdk: "vmdk", vhdx: "vhdx", vpc: "vhd" };

/** Disk formats that are converted to qcow2: their files only ever exist between download and conversion. */
const CONVERTED_FORMATS: ImageFormat[] = ["raw", "vmdk", "vhdx", "vpc"];

/**
 * Every file a download of one image may leave in its pool, all named after the image id, so a
 * retried attempt and a compensation find them. Dot-files are work in progress.
 */
export function imageFiles(targetDir: string, imageId: string) {
  const inPool = (name: string) => path.join(targetDir, name);
  return {
    partial: inPool(`.partial-${imageId}`),
    /** The finished image: an ISO, or a qcow2 for every disk. */
    final: (kind: "iso" | "disk") => inPool(`${imageId}.${kind === "iso" ? "iso" : "qcow2"}`),
    /** A verified download awaiting conversion to qcow2. */
    source: (format: ImageFormat) => inPool(`${imageId}.${EXTENSIONS[format]}`),
    converting: inPool(`.converting-${imageId}.qcow2`),
    /**
     * For a converted disk, the checksum and format of what was downloaded: the qcow2 no longer
     * hashes to the published checksum, and a retry after success must still recognise it.
     */
    sourceRecord: inPool(`.${imageId}.source.json`),
    sourceRecordTemp: inPool(`.${imageId}.source.json.tmp`),
  };
}

export type ImageFiles = ReturnType<typeof imageFiles>;

/** Removes everything a download leaves before it finishes; never the finished image. Idempotent. */
export async function removeIntermediateFiles(files: ImageFiles): Promise<void> {
  const paths = [files.partial, files.converting, files.sourceRecordTemp, ...CONVERTED_FORMATS.map((f) => files.source(f))];
  await Promise.all(paths.map((p) => rm(p, { force: true })));
}
