import { permanentFailure } from "../../common/errors";

/**
 * Decides what a download is from its first bytes, never from its URL or headers: mirrors answer
 * errors with "200 OK" HTML pages, and a mislabelled file must fail before gigabytes arrive.
 */

export type ImageKind = "iso" | "disk";

/** Formats as qemu-img names them ("vpc" is VHD), plus "iso". */
export type ImageFormat = "iso" | "qcow2" | "raw" | "vmdk" | "vhdx" | "vpc";

/**
 * Bytes needed to decide: an ISO 9660 primary volume descriptor starts at 0x8000 ("\x01CD001");
 * disk signatures (image magics, MBR, GPT, file system superblocks) lie in the first 64 KiB.
 */
export const PROBE_BYTES: Record<ImageKind, number> = { iso: 0x8006, disk: 64 * 1024 };

function has(head: Buffer, offset: number, signature: string | number[]): boolean {
  const sig = typeof signature === "string" ? Buffer.from(signature, "latin1") : Buffer.from(signature);
  return head.length >= offset + sig.length && head.subarray(offset, offset + sig.length).equals(sig);
}

const IMAGE_MAGICS: Array<[ImageFormat, number, string]> = [
  ["qcow2", 0, "QFI\xfb"],
  ["vmdk", 0, "KDMV"], // sparse extent header
  ["vhdx", 0, "vhdxfile"],
  ["vpc", 0, "conectix"], // dynamic VHD: copy of the footer at offset 0
];

const ARCHIVE_MAGICS: Array<[string, number[]]> = [
  ["gzip", [0x1f, 0x8b]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["zip", [0x50, 0x4b, 0x03, 0x04]],
];

function isIso9660(head: Buffer): boolean {
  return has(head, 0x8001, "CD001");
}

/** Markup or JSON: what an error page, a login wall or a directory listing looks like. */
function looksLikeDocument(head: Buffer): boolean {
  const text = head.subarray(0, 512).toString("latin1").replace(/^\xef\xbb\xbf/, "").trimStart();
  return text.startsWith("<") || /^[{[]\s*["{[]/.test(text);
}

/** A raw disk carries a partition table (MBR, GPT) or a bare file system (ext2/3/4, XFS). */
function isRawDisk(head: Buffer): boolean {
  return has(head, 510, [0x55, 0xaa]) || has(head, 512, "EFI PART") || has(head, 0x438, [0x53, 0xef]) || has(head, 0, "XFSB");
}

/** A short description of what the bytes are, for error messages. */
function describe(head: Buffer): string {
  for (const [format, offset, magic] of IMAGE_MAGICS) if (has(head, offset, magic)) return `a ${format} disk image`;
  for (const [name, magic] of ARCHIVE_MAGICS) if (has(head, 0, magic)) return `${name}-compressed data (decompress it first)`;
  if (isIso9660(head)) return "an ISO 9660 image";
  if (looksLikeDocument(head)) return "a text document (an HTML error page?)";
  if (head.length < 512) return `only ${head.length} bytes`;
  return "unrecognised data";
}

function mismatch(expected: string, head: Buffer) {
  return permanentFailure("CONTENT_TYPE_MISMATCH", `expected ${expected}, got ${describe(head)}`);
}

/**
 * The format of an image given its first PROBE_BYTES[kind] bytes (fewer if the file is shorter),
 * or CONTENT_TYPE_MISMATCH. A disk must be one of the known image formats or a recognisable raw
 * disk; an ISO (even a hybrid one with an MBR) is not accepted as a disk.
 */
export function detectFormat(kind: ImageKind, head: Buffer): ImageFormat {
  if (kind === "iso") {
    if (isIso9660(head)) return "iso";
    throw mismatch("an ISO 9660 image", head);
  }
  for (const [format, offset, magic] of IMAGE_MAGICS) if (has(head, offset, magic)) return format;
  if (!isIso9660(head) && !looksLikeDocument(head) && isRawDisk(head)) return "raw";
  throw mismatch("a disk image (qcow2, vmdk, vhdx, vhd or raw with a partition table)", head);
}
