import type { FileType } from "./backend";

/**
 * Tells a pool file's type from its content, never from its name: a user can upload "x.iso" that
 * is a qcow2, and treating a qcow2 as raw (or the reverse) hands a guest the wrong bytes.
 */

/** Bytes to read from the start of a file: enough for every magic below. */
export const HEAD_LENGTH = 32;
/** ISO 9660: the first volume descriptor is at sector 16 (0x8000); "CD001" follows its type byte. */
export const ISO_MAGIC_OFFSET = 0x8001;
export const ISO_MAGIC = Buffer.from("CD001", "latin1");

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]); // "QFI\xfb"
const VMDK_SPARSE_MAGIC = Buffer.from("KDMV", "latin1");
const VMDK_DESCRIPTOR = Buffer.from("# Disk DescriptorFile", "latin1");
const SECTOR = 512;

/** `head`: the file's first bytes; `isoMagic`: its bytes at ISO_MAGIC_OFFSET (empty if shorter). */
export function detectFileType(head: Buffer, isoMagic: Buffer, sizeBytes: number): FileType {
  const startsWith = (magic: Buffer) => head.subarray(0, magic.length).equals(magic);
  if (startsWith(QCOW2_MAGIC)) return "qcow2";
  if (startsWith(VMDK_SPARSE_MAGIC) || startsWith(VMDK_DESCRIPTOR)) return "vmdk";
  if (isoMagic.equals(ISO_MAGIC)) return "iso";
  // A disk image is a whole number of sectors; anything else is not something to attach.
  if (sizeBytes > 0 && sizeBytes % SECTOR === 0) return "raw";
  return "other";
}
