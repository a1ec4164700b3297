import fs from "node:fs/promises";
import path from "node:path";
import { permanentFailure } from "../../common/errors";
import type { DiskElement, FileEntry, StorageBackend } from "./backend";
import { detectFileType, HEAD_LENGTH, ISO_MAGIC, ISO_MAGIC_OFFSET } from "./file-types";
import { libnfs, type NfsExport, type NfsListEntry } from "./libnfs";
import { fileDiskElement, localDirFiles } from "./local-dir";
import { createQcow2Volumes, type PoolFiles, volumeFileName } from "./qcow2-file-pool";
import { backingChain } from "./qemu-img";

/**
 * An NFS export holding qcow2 volumes, reached one of two ways:
 * - `mountPoint` given: the host mounted the export (fstab), and the pool is a directory there;
 *   every operation first checks the mount, so a lost mount never fills the local disk instead.
 * - otherwise, without any mount (these hosts have no kernel NFS client): qemu-img and the guest's
 *   qemu open nfs://server/export/file through libnfs, and file operations go through ./libnfs.
 * One pool must be used one way by all hosts: CoW clones record their backing file as a path in
 * the first case and as an nfs:// URL in the second. (A relative backing name would serve both, but
 * qemu 7.2 resolves it wrongly under an nfs:// URL: "<url of the child>/<name>".)
 */
export interface NfsConfig {
  server: string;
  exportPath: string;
  mountPoint?: string;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
/** Hostnames and IPv4 addresses: the server goes into nfs:// URLs and libvirt XML unescaped. */
const SERVER = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;
/** Characters an nfs:// URL gives meaning to (query, fragment, escapes) cannot be in pool paths. */
const URL_SPECIAL = /[?#%\\\0]/;

function checkConfig(config: NfsConfig): NfsExport {
  if (!SERVER.test(config.server)) throw permanentFailure("VALIDATION_FAILED", `invalid NFS server ${JSON.stringify(config.server)}`);
  const exportPath = config.exportPath;
  if (!path.isAbsolute(exportPath) || path.posix.normalize(exportPath) !== exportPath || exportPath === "/" || URL_SPECIAL.test(exportPath)) {
    throw permanentFailure("VALIDATION_FAILED", `invalid NFS export path ${JSON.stringify(exportPath)}`);
  }
  return { server: config.server, exportPath };
}

/**
 * The lexical half of common/confine-path (which needs a local realpath): the libnfs script then
 * resolves symlinks on the server's tree and refuses any that lead outside the export.
 */
function exportPathOf(relativePath: string): string {
  const reject = (why: string) => permanentFailure("INVALID_PATH", `path ${JSON.stringify(relativePath)} ${why}`);
  if (URL_SPECIAL.test(relativePath)) throw reject("contains a NUL byte, escape, backslash, '?' or '#'");
  if (relativePath.startsWith("/")) throw reject("is absolute");
  const segments = relativePath.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) throw reject("leaves the pool");
  return "/" + segments.join("/");
}

function entryOf(raw: NfsListEntry): FileEntry {
  const base = { name: raw.name, sizeBytes: raw.size, modifiedAt: new Date(raw.mtime * 1000).toISOString() };
  if (raw.broken) return { ...base, type: "broken-link", linkProblem: raw.broken };
  const kind = raw.mode & S_IFMT;
  if (kind === S_IFDIR) return { ...base, type: "directory" };
  if (kind !== S_IFREG || raw.head === undefined) return { ...base, type: "other" };
  return { ...base, type: detectFileType(Buffer.from(raw.head, "hex"), Buffer.from(raw.isoMagic ?? "", "hex"), raw.size) };
}

function libnfsFiles(nfs: NfsExport): PoolFiles {
  const list = (exportPath: string, withHeads: boolean) =>
    libnfs<NfsListEntry[]>(nfs, "list", {
      path: exportPath,
      headLength: withHeads ? HEAD_LENGTH : 0,
      isoOffset: ISO_MAGIC_OFFSET,
      isoLength: ISO_MAGIC.length,
    });
  return {
    locate: (relativePath) => `nfs://${nfs.server}${nfs.exportPath}/${relativePath}`,
    confine: async (relativePath) => (await libnfs<string>(nfs, "resolve", { path: exportPathOf(relativePath) })).slice(1),
    exists: (relativePath) => libnfs<boolean>(nfs, "exists", { path: exportPathOf(relativePath) }),
    remove: (relativePath) => libnfs<void>(nfs, "remove", { path: exportPathOf(relativePath) }),
    rename: (from, to) => libnfs<void>(nfs, "rename", { from: exportPathOf(from), to: exportPathOf(to) }),
    // NFS FSSTAT: the server's file system under the export (ganesha VFS reports the real one).
    capacity: () => libnfs<{ capacityBytes: number; freeBytes: number }>(nfs, "statvfs"),
    rootFileNames: async () => (await list("/", false)).filter((e) => (e.mode & S_IFMT) === S_IFREG).map((e) => e.name),
    listDirectory: async (relativePath) => (await list(exportPathOf(relativePath), true)).map(entryOf),
  };
}

/** One network disk source (volume or backing file) from the nfs:// URL qemu reports for it. */
function networkSource(url: string): Record<string, unknown> {
  const match = /^nfs:\/\/([^/]+)(\/[^?]*)$/.exec(url);
  if (!match) throw permanentFailure("STORAGE_ERROR", `backing file ${url} is not on NFS; the chain cannot be described to libvirt`);
  return { "@_protocol": "nfs", "@_name": match[2], host: { "@_name": match[1] } };
}

/**
 * The whole backing chain is spelled out, ending in an empty <backingStore/>: libvirt cannot read
 * qcow2 headers over NFS, and with the chain it sets up every layer itself (verified: qemu gets
 * one -blockdev per layer) instead of leaving qemu to open backing files libvirt knows nothing of.
 */
async function networkDiskElement(files: PoolFiles, volumeId: string): Promise<DiskElement> {
  const [top, ...backing] = await backingChain(files.locate(volumeFileName(volumeId)));
  if (!top) throw permanentFailure("STORAGE_ERROR", `qemu-img reported no image for volume ${volumeId}`);
  let chain: unknown = "";
  for (const layer of backing.reverse()) {
    chain = { "@_type": "network", format: { "@_type": layer.format }, source: networkSource(layer.filename), backingStore: chain };
  }
  return {
    "@_type": "network",
    "@_device": "disk",
    driver: { "@_name": "qemu", "@_type": "qcow2" },
    source: networkSource(top.filename),
    backingStore: chain,
  };
}

async function isMountPoint(dir: string): Promise<boolean> {
  // mountinfo field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  const mountinfo = await fs.readFile("/proc/self/mountinfo", "utf8");
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
  return mountinfo.split("\n").some((line) => {
    const mountPoint = line.split(" ")[4];
    return mountPoint !== undefined && unescape(mountPoint) === dir;
  });
}

/** Checks the mount before each file operation: an unmounted mount point is a local, wrong directory. */
function requireMount(files: PoolFiles, mountPoint: string): PoolFiles {
  const check = async () => {
    if (!(await isMountPoint(mountPoint))) throw permanentFailure("POOL_UNAVAILABLE", `NFS export is not mounted at ${mountPoint}`);
  };
  const guard =
    <A extends unknown[], R>(op: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await check();
      return op(...args);
    };
  return {
    locate: files.locate,
    confine: guard(files.confine),
    exists: guard(files.exists),
    remove: guard(files.remove),
    rename: guard(files.rename),
    capacity: guard(files.capacity),
    rootFileNames: guard(files.rootFileNames),
    listDirectory: guard(files.listDirectory),
  };
}

function createMountedNfsBackend(mountPoint: string): StorageBackend {
  const files = requireMount(localDirFiles(mountPoint), mountPoint);
  const volumes = createQcow2Volumes(files);
  return {
    kind: "nfs",
    ...volumes,
    // Mounting is the host's job (fstab); the pool only checks that it happened.
    async initPool() {
      await files.capacity();
    },
    async teardownPool() {},
    async status() {
      if (!(await isMountPoint(mountPoint))) {
        return { health: "unmounted", capacityBytes: 0, freeBytes: 0, volumeCount: 0, message: `nothing mounted at ${mountPoint}` };
      }
      return volumes.status();
    },
    async diskElement(volumeId) {
      const name = volumeFileName(volumeId);
      if (!(await files.exists(name))) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${volumeId} does not exist`);
      return fileDiskElement(files.locate(name));
    },
  };
}

function createUrlNfsBackend(nfs: NfsExport): StorageBackend {
  const files = libnfsFiles(nfs);
  return {
    kind: "nfs",
    ...createQcow2Volumes(files),
    // Nothing to set up without a mount; this proves the export answers (POOL_UNAVAILABLE if not).
    async initPool() {
      await files.capacity();
    },
    async teardownPool() {},
    async diskElement(volumeId) {
      if (!(await files.exists(volumeFileName(volumeId)))) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${volumeId} does not exist`);
      return networkDiskElement(files, volumeId);
    },
  };
}

export function createNfsBackend(config: NfsConfig): StorageBackend {
  const nfs = checkConfig(config);
  return config.mountPoint === undefined ? createUrlNfsBackend(nfs) : createMountedNfsBackend(path.resolve(config.mountPoint));
}
