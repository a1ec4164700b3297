import { CommandError, runCommand } from "../../common/exec";
import { permanentFailure, transientFailure } from "../../common/errors";

/**
 * File operations on an NFS export without mounting it (these hosts have no kernel NFS client).
 * qemu-img covers image content over nfs:// URLs, and libnfs-utils only has nfs-ls/nfs-cp/nfs-cat:
 * nothing deletes, renames or reports free space. libnfs itself can (nfs_unlink, nfs_rename,
 * nfs_statvfs64), and Debian's python3 reaches it through ctypes without a compiler or a PyPI
 * package (the PyPI "libnfs" binding is from 2016 and needs building). The script is fed to
 * `python3 -` on stdin, so it ships inside the compiled JS and nothing else has to be deployed.
 *
 * Paths are relative to the export. The script resolves symlinks itself, so a path or link can
 * never lead outside the export: an absolute link target counts only if it lies under the export path.
 */
const HELPER = String.raw`
import ctypes, json, posixpath, stat, sys

class Stat64(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("dev", "ino", "mode", "nlink", "uid", "gid", "rdev", "size",
        "blksize", "blocks", "atime", "mtime", "ctime", "atime_nsec", "mtime_nsec", "ctime_nsec", "used")]

class StatVfs64(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("bsize", "frsize", "blocks", "bfree", "bavail", "files",
        "ffree", "favail", "fsid", "flag", "namemax")]

class DirEnt(ctypes.Structure):  # leading fields of struct nfsdirent; only the name is read
    _fields_ = [("next", ctypes.c_void_p), ("name", ctypes.c_char_p)]

P, S, I = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
lib = ctypes.CDLL("libnfs.so.13")
for fn, res, args in [
    ("nfs_init_context", P, []), ("nfs_destroy_context", None, [P]), ("nfs_get_error", S, [P]),
    ("nfs_set_timeout", None, [P, I]), ("nfs_mount", I, [P, S, S]),
    ("nfs_lstat64", I, [P, S, ctypes.POINTER(Stat64)]), ("nfs_readlink", I, [P, S, S, I]),
    ("nfs_unlink", I, [P, S]), ("nfs_rename", I, [P, S, S]),
    ("nfs_statvfs64", I, [P, S, ctypes.POINTER(StatVfs64)]),
    ("nfs_opendir", I, [P, S, ctypes.POINTER(P)]), ("nfs_readdir", ctypes.POINTER(DirEnt), [P, P]),
    ("nfs_closedir", None, [P, P]), ("nfs_open", I, [P, S, I, ctypes.POINTER(P)]),
    ("nfs_pread", I, [P, P, ctypes.c_uint64, ctypes.c_uint64, P]), ("nfs_close", I, [P, P])]:
    getattr(lib, fn).restype = res
    getattr(lib, fn).argtypes = args

class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code

ENOENT, ENOTDIR, ELOOP = 2, 20, 40
CODES = {ENOENT: "ENOENT", 13: "EACCES", ENOTDIR: "ENOTDIR", ELOOP: "ELOOP", 110: "ETIMEDOUT"}

def check(rc, what):
    if rc < 0:
        raise Failure(CODES.get(-rc, "EIO"), what + ": " + (lib.nfs_get_error(ctx) or b"").decode(errors="replace"))
    return rc

def enc(path):
    return path.encode()

def lstat(path):
    st = Stat64()
    check(lib.nfs_lstat64(ctx, enc(path), ctypes.byref(st)), "lstat " + path)
    return st

def readlink(path):
    buf = ctypes.create_string_buffer(4096)
    check(lib.nfs_readlink(ctx, enc(path), buf, len(buf)), "readlink " + path)
    return buf.value.decode()

def resolve(path):
    """The symlink-free export path that path names, refusing anything outside the export."""
    done, todo, hops = [], [s for s in path.split("/") if s], 0
    while todo:
        seg = todo.pop(0)
        if seg == ".":
            continue
        if seg == "..":
            if not done:
                raise Failure("ESCAPE", path + " leaves the export")
            done.pop()
            continue
        current = "/" + "/".join(done + [seg])
        if not stat.S_ISLNK(lstat(current).mode):
            done.append(seg)
            continue
        hops += 1
        if hops > 40:
            raise Failure("ELOOP", "too many symlinks in " + path)
        target = readlink(current)
        if target.startswith("/"):
            # The server's absolute path: inside the export only if under its path.
            if target != export and not target.startswith(export + "/"):
                raise Failure("ESCAPE", path + " links outside the export")
            done, target = [], target[len(export):]
        todo = [s for s in target.split("/") if s] + todo
    return "/" + "/".join(done)

def read_at(fh, offset, length):
    buf = ctypes.create_string_buffer(length)
    n = check(lib.nfs_pread(ctx, fh, offset, length, buf), "read")
    return buf.raw[:n].hex()

def entry(name, path):
    st = lstat(path)
    out = {"name": name, "mode": st.mode, "size": st.size, "mtime": st.mtime}
    if stat.S_ISREG(st.mode) and args.get("headLength"):  # only regular files are opened
        fh = P()
        check(lib.nfs_open(ctx, enc(path), 0, ctypes.byref(fh)), "open " + path)
        try:
            out["head"] = read_at(fh, 0, int(args["headLength"]))
            out["isoMagic"] = read_at(fh, int(args["isoOffset"]), int(args["isoLength"]))
        finally:
            lib.nfs_close(ctx, fh)
    return out

def list_dir(path):
    real = resolve(path)
    if not stat.S_ISDIR(lstat(real).mode):
        raise Failure("ENOTDIR", path + " is not a directory")
    handle, names = P(), []
    check(lib.nfs_opendir(ctx, enc(real), ctypes.byref(handle)), "opendir " + path)
    try:
        while True:
            ent = lib.nfs_readdir(ctx, handle)
            if not ent:
                break
            names.append(ent.contents.name.decode())
    finally:
        lib.nfs_closedir(ctx, handle)
    entries = []
    for name in sorted(n for n in names if not n.startswith(".")):
        path = posixpath.join(real, name)
        try:
            entries.append(entry(name, resolve(path)))
        except Failure as f:
            if f.code == "ESCAPE":  # links out of the export are left out
                continue
            if f.code not in ("ENOENT", "ELOOP"):
                raise
            try:  # a dangling or looping link is listed as such; an entry removed meanwhile is not
                st = lstat(path)
            except Failure:
                continue
            entries.append({"name": name, "mode": st.mode, "size": 0, "mtime": st.mtime,
                            "broken": "loop" if f.code == "ELOOP" else "dangling"})
    return entries

def statvfs():
    sv = StatVfs64()
    check(lib.nfs_statvfs64(ctx, b"/", ctypes.byref(sv)), "statvfs")
    return {"capacityBytes": sv.blocks * sv.frsize, "freeBytes": sv.bavail * sv.frsize}

def run(op):
    if op == "exists":
        try:
            lstat(args["path"])
            return True
        except Failure as f:
            if f.code == "ENOENT":
                return False
            raise
    if op == "remove":
        rc = lib.nfs_unlink(ctx, enc(args["path"]))
        if rc < 0 and -rc != ENOENT:
            check(rc, "unlink " + args["path"])
        return None
    if op == "rename":
        check(lib.nfs_rename(ctx, enc(args["from"]), enc(args["to"])), "rename " + args["from"])
        return None
    if op == "resolve":
        return resolve(args["path"])
    if op == "list":
        return list_dir(args["path"])
    if op == "statvfs":
        return statvfs()
    raise Failure("EINVAL", "unknown operation " + op)

args = json.loads(sys.argv[1])
server, export = args["server"], args["export"]
ctx = lib.nfs_init_context()
try:
    lib.nfs_set_timeout(ctx, int(args["timeoutMs"]))
    if lib.nfs_mount(ctx, enc(server), enc(export)) < 0:
        raise Failure("UNAVAILABLE", "mount: " + (lib.nfs_get_error(ctx) or b"").decode(errors="replace"))
    print(json.dumps({"ok": run(args["op"])}))
except Failure as f:
    print(json.dumps({"error": f.code, "message": str(f)}))
finally:
    lib.nfs_destroy_context(ctx)
`;

/** Debian's interpreter, not whatever python3 comes first on PATH: ctypes and libnfs13 are known there. */
const PYTHON = "/usr/bin/python3";
/** libnfs's own RPC timeout; the process timeout is a backstop for a hang outside RPCs. */
const RPC_TIMEOUT_MS = 15_000;
const PROCESS_TIMEOUT_MS = 60_000;

export interface NfsExport {
  server: string;
  exportPath: string;
}

export interface NfsListEntry {
  name: string;
  mode: number;
  size: number;
  mtime: number;
  /** Hex of the first bytes and of the bytes at the ISO magic offset; regular files only. */
  head?: string;
  isoMagic?: string;
  /** A symlink whose target is missing or that loops. */
  broken?: "dangling" | "loop";
}

type Reply<T> = { ok: T } | { error: string; message: string };

/** Runs one libnfs operation of the script above; its error codes become typed failures. */
export async function libnfs<T>(nfs: NfsExport, op: string, args: Record<string, string | number> = {}): Promise<T> {
  // The request (paths, no secrets: AUTH_SYS has none) is one argument; the script comes on stdin.
  const request = JSON.stringify({ ...args, op, server: nfs.server, export: nfs.exportPath, timeoutMs: RPC_TIMEOUT_MS });
  let stdout: string;
  try {
    ({ stdout } = await runCommand(PYTHON, ["-", request], { input: HELPER, timeoutMs: PROCESS_TIMEOUT_MS }));
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    throw err.timedOut ? transientFailure("COMMAND_TIMEOUT", err.message) : permanentFailure("STORAGE_ERROR", err.message);
  }
  const reply = JSON.parse(stdout) as Reply<T>;
  if ("ok" in reply) return reply.ok;
  throw failureFor(reply.error, `NFS ${nfs.server}:${nfs.exportPath}: ${reply.message}`);
}

function failureFor(code: string, message: string) {
  switch (code) {
    case "ESCAPE":
      return permanentFailure("INVALID_PATH", message);
    case "ENOENT":
    case "ELOOP": // a looping link leads nowhere, as on a local pool (common/confine-path)
      return permanentFailure("NOT_FOUND", message);
    case "ENOTDIR":
      return permanentFailure("VALIDATION_FAILED", message);
    case "EACCES":
      return permanentFailure("STORAGE_ERROR", message);
    case "UNAVAILABLE": // mount failed: server or portmapper down, export gone or not ours
    case "ETIMEDOUT":
      return transientFailure("POOL_UNAVAILABLE", message);
    default:
      return transientFailure("STORAGE_ERROR", message);
  }
}
