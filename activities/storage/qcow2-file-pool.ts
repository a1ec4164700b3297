import { permanentFailure } from "../../common/errors";
import type { CopyProgress, FileEntry, PoolStatus, SnapshotInfo, StorageBackend, VolumeInfo, VolumeSpec } from "./backend";
import { type Backing, convertImage, createImage, imageInfo, type QemuImageInfo, resizeImage, snapshotCommand } from "./qemu-img";

/**
 * The volume and snapshot logic shared by every pool of qcow2 files (dir, NFS mounted or not):
 * volume `<id>.qcow2` directly in the pool root, base images anywhere in it by relative path,
 * internal qcow2 snapshots. How files are reached (local fs, libnfs) is a PoolFiles.
 *
 * Every new volume is written under a hidden partial name and renamed into place last, so a crash
 * never leaves a file that looks like a complete volume; a retry removes the partial and redoes it.
 */
export interface PoolFiles {
  /** What qemu opens for a pool-relative path: an absolute path or an nfs:// URL. */
  locate(relativePath: string): string;
  /** Resolves a user-given path (symlinks too) to the pool-relative path of a file inside the pool. */
  confine(relativePath: string): Promise<string>;
  exists(relativePath: string): Promise<boolean>;
  /** Success when the file is already gone. */
  remove(relativePath: string): Promise<void>;
  /** Atomic: the target name appears only with the complete file behind it. */
  rename(from: string, to: string): Promise<void>;
  capacity(): Promise<{ capacityBytes: number; freeBytes: number }>;
  /** Names of the regular files directly in the pool root. */
  rootFileNames(): Promise<string[]>;
  /** The entries of a pool directory; the path is confined like `confine`. */
  listDirectory(relativePath: string): Promise<FileEntry[]>;
}

export type Qcow2Volumes = Omit<StorageBackend, "kind" | "initPool" | "teardownPool" | "diskElement">;

const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const VOLUME_SUFFIX = ".qcow2";
/** Starts with a letter: qemu-img looks a snapshot up by numeric id before name, so "2" could hit another. */
const SNAPSHOT_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/;
const SECTOR = 512;

/** The file name of a volume; refuses ids that could name anything else. */
export function volumeFileName(volumeId: string): string {
  if (!VOLUME_ID.test(volumeId) || volumeId.includes("..")) {
    throw permanentFailure("VALIDATION_FAILED", `invalid volume id ${JSON.stringify(volumeId)}`);
  }
  return volumeId + VOLUME_SUFFIX;
}

/** Where cloud-init seed ISOs live in a pool; they never back a volume. */
export const SEEDS_DIR = "seeds";

/** The volume id a root file name stands for, or null for any other file. */
function volumeIdOfFileName(name: string): string | null {
  if (!name.endsWith(VOLUME_SUFFIX)) return null;
  const id = name.slice(0, -VOLUME_SUFFIX.length);
  return VOLUME_ID.test(id) && !id.includes("..") ? id : null;
}

function partialFileName(volumeId: string): string {
  return `.${volumeId}${VOLUME_SUFFIX}.part`;
}

function checkSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % SECTOR !== 0) {
    throw permanentFailure("VALIDATION_FAILED", `size ${sizeBytes} is not a positive multiple of ${SECTOR} bytes`);
  }
}

function checkSnapshotName(name: string): void {
  if (!SNAPSHOT_NAME.test(name)) throw permanentFailure("VALIDATION_FAILED", `invalid snapshot name ${JSON.stringify(name)}`);
}

function hasSnapshot(info: QemuImageInfo, name: string): boolean {
  return (info.snapshots ?? []).some((s) => s.name === name);
}

export function createQcow2Volumes(files: PoolFiles): Qcow2Volumes {
  const volumeLocation = (volumeId: string) => files.locate(volumeFileName(volumeId));

  async function rawInfo(volumeId: string): Promise<QemuImageInfo | null> {
    const name = volumeFileName(volumeId);
    return (await files.exists(name)) ? imageInfo(files.locate(name)) : null;
  }

  async function requireInfo(volumeId: string): Promise<QemuImageInfo> {
    const info = await rawInfo(volumeId);
    if (!info) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${volumeId} does not exist`);
    return info;
  }

  function toVolumeInfo(volumeId: string, info: QemuImageInfo): VolumeInfo {
    if (info.format !== "qcow2") {
      throw permanentFailure("STORAGE_ERROR", `volume ${volumeId} is ${info.format}, not qcow2`);
    }
    const backing = info["full-backing-filename"];
    const backingVolumeId = backing === undefined ? null : volumeIdOfLocation(backing);
    return {
      volumeId,
      location: info.filename,
      format: "qcow2",
      sizeBytes: info["virtual-size"],
      allocatedBytes: info["actual-size"] ?? 0,
      ...(backingVolumeId ? { backingVolumeId } : {}),
    };
  }

  function volumeIdOfLocation(location: string): string | null {
    const id = volumeIdOfFileName(location.slice(location.lastIndexOf("/") + 1));
    return id !== null && volumeLocation(id) === location ? id : null;
  }

  /** Volumes whose qcow2 backing file is `volumeId`: changing its data would corrupt them. */
  async function childrenOf(volumeId: string): Promise<string[]> {
    const location = volumeLocation(volumeId);
    const children: string[] = [];
    // One qemu-img per volume of the pool: fine for the rare delete/revert, too slow for hot paths.
    for (const name of await files.rootFileNames()) {
      const childId = volumeIdOfFileName(name);
      if (!childId || childId === volumeId) continue;
      const info = await imageInfo(files.locate(name));
      if (info["full-backing-filename"] === location) children.push(childId);
    }
    return children;
  }

  async function refuseIfBacking(volumeId: string, what: string): Promise<void> {
    const children = await childrenOf(volumeId);
    if (children.length > 0) {
      throw permanentFailure("VOLUME_IN_USE", `cannot ${what} volume ${volumeId}: it backs ${children.join(", ")}`);
    }
  }

  /**
   * A base image given by relative path: confined to the pool, in a subdirectory of it (volumes
   * live in the root, and a VM must never get a copy-on-write view of another VM's disk), not a
   * cloud-init seed (it holds a VM's password hash), not hidden (partial files), qcow2 or raw, with
   * no backing file. The rule applies to the path after symlinks are resolved.
   */
  async function baseImage(relativePath: string, sizeBytes: number): Promise<Backing & { sizeBytes: number }> {
    const confined = await files.confine(relativePath);
    const segments = confined.split("/");
    if (segments.length < 2 || segments[0] === SEEDS_DIR || segments.some((s) => s.startsWith("."))) {
      throw permanentFailure("VALIDATION_FAILED", `${relativePath} cannot be a base image: images live in a directory of the pool, such as images/`);
    }
    const location = files.locate(confined);
    const info = await imageInfo(location);
    if (info.format !== "qcow2" && info.format !== "raw") {
      throw permanentFailure("VALIDATION_FAILED", `image ${relativePath} is ${info.format}; only qcow2 and raw can back a volume`);
    }
    // A qcow2 may name any host file as its backing or external data file; a guest would then read it.
    if (info["backing-filename"] !== undefined || info["format-specific"]?.data?.["data-file"] !== undefined) {
      throw permanentFailure("VALIDATION_FAILED", `image ${relativePath} reads another file; flatten it first`);
    }
    if (info.encrypted) throw permanentFailure("VALIDATION_FAILED", `image ${relativePath} is encrypted`);
    if (info["virtual-size"] > sizeBytes) {
      throw permanentFailure("VALIDATION_FAILED", `volume size ${sizeBytes} is smaller than image ${relativePath} (${info["virtual-size"]})`);
    }
    return { location, format: info.format, sizeBytes: info["virtual-size"] };
  }

  /** Writes the new volume's content to `target` (a partial file). */
  async function writeContent(spec: VolumeSpec, target: string): Promise<void> {
    const source = spec.source;
    switch (source.kind) {
      case "empty":
        await createImage(target, spec.sizeBytes);
        return;
      case "image": {
        const image = await baseImage(source.path, spec.sizeBytes);
        if (source.cow) {
          await createImage(target, spec.sizeBytes, image);
          return;
        }
        await convertImage({ source: image.location, sourceFormat: image.format, target });
        if (spec.sizeBytes > image.sizeBytes) await resizeImage(target, spec.sizeBytes);
        return;
      }
      case "clone": {
        const parent = await requireInfo(source.volumeId);
        if (parent["virtual-size"] > spec.sizeBytes) {
          throw permanentFailure("VALIDATION_FAILED", `volume size ${spec.sizeBytes} is smaller than volume ${source.volumeId}`);
        }
        const parentLocation = volumeLocation(source.volumeId);
        if (source.snapshot === undefined) {
          // Copy-on-write: the parent becomes a base; the control plane must not write to it again.
          await createImage(target, spec.sizeBytes, { location: parentLocation, format: "qcow2" });
          return;
        }
        // An internal snapshot cannot be another image's backing file, so a snapshot clone is a full copy.
        checkSnapshotName(source.snapshot);
        if (!hasSnapshot(parent, source.snapshot)) {
          throw permanentFailure("NOT_FOUND", `volume ${source.volumeId} has no snapshot ${source.snapshot}`);
        }
        await convertImage({ source: parentLocation, sourceFormat: "qcow2", target, snapshot: source.snapshot });
        if (spec.sizeBytes > parent["virtual-size"]) await resizeImage(target, spec.sizeBytes);
        return;
      }
    }
  }

  async function expectedBacking(spec: VolumeSpec): Promise<string | undefined> {
    const source = spec.source;
    if (source.kind === "image" && source.cow) return files.locate(await files.confine(source.path));
    if (source.kind === "clone" && source.snapshot === undefined) return volumeLocation(source.volumeId);
    return undefined;
  }

  return {
    async status(): Promise<PoolStatus> {
      try {
        const { capacityBytes, freeBytes } = await files.capacity();
        const volumeCount = (await files.rootFileNames()).filter((n) => volumeIdOfFileName(n) !== null).length;
        return { health: "healthy", capacityBytes, freeBytes, volumeCount };
      } catch (err) {
        return { health: "error", capacityBytes: 0, freeBytes: 0, volumeCount: 0, message: (err as Error).message };
      }
    },

    async createVolume(spec: VolumeSpec): Promise<VolumeInfo> {
      checkSize(spec.sizeBytes);
      const name = volumeFileName(spec.volumeId);
      const existing = await rawInfo(spec.volumeId);
      if (existing) {
        // A retry finds its own earlier work; anything else under this id is a different volume.
        const backing = await expectedBacking(spec);
        if (existing["virtual-size"] !== spec.sizeBytes || existing["full-backing-filename"] !== backing) {
          throw permanentFailure("CONFLICT", `volume ${spec.volumeId} already exists with another size or source`);
        }
        return toVolumeInfo(spec.volumeId, existing);
      }
      const partial = partialFileName(spec.volumeId);
      await files.remove(partial);
      try {
        await writeContent(spec, files.locate(partial));
      } catch (err) {
        await files.remove(partial);
        throw err;
      }
      await files.rename(partial, name);
      return toVolumeInfo(spec.volumeId, await requireInfo(spec.volumeId));
    },

    async volumeInfo(volumeId: string): Promise<VolumeInfo | null> {
      const info = await rawInfo(volumeId);
      return info ? toVolumeInfo(volumeId, info) : null;
    },

    async deleteVolume(volumeId: string): Promise<void> {
      const name = volumeFileName(volumeId);
      if (await files.exists(name)) {
        await refuseIfBacking(volumeId, "delete");
        await files.remove(name);
      }
      await files.remove(partialFileName(volumeId));
    },

    async resizeVolume(volumeId: string, sizeBytes: number): Promise<void> {
      checkSize(sizeBytes);
      const current = (await requireInfo(volumeId))["virtual-size"];
      if (sizeBytes < current) {
        throw permanentFailure("VALIDATION_FAILED", `volume ${volumeId} is ${current} bytes; shrinking to ${sizeBytes} would lose data`);
      }
      if (sizeBytes > current) await resizeImage(volumeLocation(volumeId), sizeBytes);
    },

    async copyVolume(sourceVolumeId: string, targetVolumeId: string, onProgress: CopyProgress, signal?: AbortSignal): Promise<VolumeInfo> {
      const target = volumeFileName(targetVolumeId);
      // The target only ever appears complete (rename last), so finding it means a retry after success.
      const done = await rawInfo(targetVolumeId);
      if (done) return toVolumeInfo(targetVolumeId, done);
      const total = (await requireInfo(sourceVolumeId))["virtual-size"];
      const partial = partialFileName(targetVolumeId);
      await files.remove(partial);
      try {
        await convertImage({
          source: volumeLocation(sourceVolumeId),
          sourceFormat: "qcow2",
          target: files.locate(partial),
          onPercent: (percent) => onProgress(Math.round((total * percent) / 100), total),
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        await files.remove(partial);
        throw err;
      }
      await files.rename(partial, target);
      return toVolumeInfo(targetVolumeId, await requireInfo(targetVolumeId));
    },

    async createSnapshot(volumeId: string, name: string): Promise<void> {
      checkSnapshotName(name);
      // qcow2 allows two snapshots with one name; a retried create must not make a second.
      if (!hasSnapshot(await requireInfo(volumeId), name)) await snapshotCommand("create", volumeLocation(volumeId), name);
    },

    async listSnapshots(volumeId: string): Promise<SnapshotInfo[]> {
      return ((await requireInfo(volumeId)).snapshots ?? []).map((s) => ({
        name: s.name,
        createdAt: new Date(s["date-sec"] * 1000).toISOString(),
        sizeBytes: s["vm-state-size"],
      }));
    },

    async deleteSnapshot(volumeId: string, name: string): Promise<void> {
      checkSnapshotName(name);
      const info = await rawInfo(volumeId);
      if (info && hasSnapshot(info, name)) await snapshotCommand("delete", volumeLocation(volumeId), name);
    },

    async revertSnapshot(volumeId: string, name: string): Promise<void> {
      checkSnapshotName(name);
      if (!hasSnapshot(await requireInfo(volumeId), name)) {
        throw permanentFailure("NOT_FOUND", `volume ${volumeId} has no snapshot ${name}`);
      }
      await refuseIfBacking(volumeId, "revert");
      await snapshotCommand("apply", volumeLocation(volumeId), name);
    },

    listFiles(relativePath: string): Promise<FileEntry[]> {
      return files.listDirectory(relativePath);
    },
  };
}
