import { constants, type Dirent } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { confinePath } from "../../common/confine-path";
import { permanentFailure, transientFailure } from "../../common/errors";
import type { DiskElement, FileEntry, StorageBackend } from "./backend";
import { detectFileType, HEAD_LENGTH, ISO_MAGIC, ISO_MAGIC_OFFSET } from "./file-types";
import { createQcow2Volumes, type PoolFiles, volumeFileName } from "./qcow2-file-pool";

/**
 * A pool that is a directory of this host (local disk, or an NFS export mounted by the host):
 * qcow2 volumes `<id>.qcow2` in `root`, base images by relative path below it.
 * CoW clones name their backing file by absolute path, so the pool must stay at `root`.
 */
export interface LocalDirConfig {
  root: string;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "ENOENT";
}

/** fs errors of a pool are storage errors; an I/O hiccup may pass, so they are retryable. */
function storageFailure(what: string, err: unknown) {
  return transientFailure("STORAGE_ERROR", `${what}: ${(err as Error).message}`);
}

async function readAt(file: fs.FileHandle, length: number, position: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, position);
  return buffer.subarray(0, bytesRead);
}

/** Only regular files are opened: opening a FIFO or device found in a pool could block or act. */
async function entryOf(name: string, realPath: string): Promise<FileEntry | null> {
  const stat = await fs.stat(realPath);
  const base = { name, sizeBytes: stat.size, modifiedAt: stat.mtime.toISOString() };
  if (stat.isDirectory()) return { ...base, type: "directory" };
  if (!stat.isFile()) return { ...base, type: "other" };
  const file = await fs.open(realPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const head = await readAt(file, HEAD_LENGTH, 0);
    const isoMagic = await readAt(file, ISO_MAGIC.length, ISO_MAGIC_OFFSET);
    return { ...base, type: detectFileType(head, isoMagic, stat.size) };
  } finally {
    await file.close();
  }
}

/**
 * One entry of a listing: symlinks count when they resolve inside the pool; a dangling or looping
 * one is shown as a broken link (one bad link must neither hide nor break the listing); one that
 * leaves the pool is not listed (null), nor is an entry removed while we list.
 */
async function listedEntry(dir: string, entry: Dirent, realRoot: string): Promise<FileEntry | null> {
  const entryPath = path.join(dir, entry.name);
  let real = entryPath;
  if (entry.isSymbolicLink()) {
    try {
      real = await fs.realpath(entryPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ELOOP") throw err;
      const link = await fs.lstat(entryPath);
      return { name: entry.name, type: "broken-link", sizeBytes: 0, modifiedAt: link.mtime.toISOString(), linkProblem: code === "ELOOP" ? "loop" : "dangling" };
    }
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
  }
  return entryOf(entry.name, real);
}

export function localDirFiles(root: string): PoolFiles {
  const locate = (relativePath: string) => path.join(root, relativePath);
  return {
    locate,

    async confine(relativePath) {
      const real = await confinePath(root, relativePath);
      return path.relative(await fs.realpath(root), real);
    },

    async exists(relativePath) {
      try {
        await fs.lstat(locate(relativePath));
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw storageFailure(`stat ${relativePath}`, err);
      }
    },

    async remove(relativePath) {
      try {
        await fs.unlink(locate(relativePath));
      } catch (err) {
        if (!isNotFound(err)) throw storageFailure(`delete ${relativePath}`, err);
      }
    },

    async rename(from, to) {
      try {
        await fs.rename(locate(from), locate(to));
      } catch (err) {
        throw storageFailure(`rename ${from} to ${to}`, err);
      }
    },

    async capacity() {
      const stat = await fs.statfs(root).catch((err: unknown) => {
        throw storageFailure(`statfs ${root}`, err);
      });
      // bavail, not bfree: blocks reserved for root are not space volumes can use.
      return { capacityBytes: stat.blocks * stat.bsize, freeBytes: stat.bavail * stat.bsize };
    },

    async rootFileNames() {
      const entries = await fs.readdir(root, { withFileTypes: true }).catch((err: unknown) => {
        throw storageFailure(`list ${root}`, err);
      });
      return entries.filter((e) => e.isFile()).map((e) => e.name);
    },

    async listDirectory(relativePath) {
      const dir = await confinePath(root, relativePath);
      const realRoot = await fs.realpath(root);
      let entries: Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOTDIR") {
          throw permanentFailure("VALIDATION_FAILED", `${relativePath} is not a directory`);
        }
        throw storageFailure(`list ${relativePath}`, err);
      }
      const listed: FileEntry[] = [];
      // Hidden names include partial volumes being written; they are not files to offer anyone.
      for (const entry of entries.filter((e) => !e.name.startsWith("."))) {
        const fileEntry = await listedEntry(dir, entry, realRoot).catch((err: unknown) => {
          if (isNotFound(err)) return null; // removed while we listed
          throw storageFailure(`inspect ${entry.name}`, err);
        });
        if (fileEntry) listed.push(fileEntry);
      }
      return listed.sort((a, b) => a.name.localeCompare(b.name));
    },
  };
}

export function fileDiskElement(absolutePath: string): DiskElement {
  return {
    "@_type": "file",
    "@_device": "disk",
    driver: { "@_name": "qemu", "@_type": "qcow2" },
    source: { "@_file": absolutePath },
  };
}

export function createLocalDirBackend(config: LocalDirConfig): StorageBackend {
  const root = path.resolve(config.root);
  const files = localDirFiles(root);
  return {
    kind: "dir",
    ...createQcow2Volumes(files),

    async initPool() {
      await fs.mkdir(root, { recursive: true }).catch((err: unknown) => {
        throw storageFailure(`create ${root}`, err);
      });
    },

    // Nothing host-side to undo: the directory holds volumes and is never removed here.
    async teardownPool() {},

    async diskElement(volumeId) {
      const name = volumeFileName(volumeId);
      if (!(await files.exists(name))) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${volumeId} does not exist`);
      return fileDiskElement(files.locate(name));
    },
  };
}
