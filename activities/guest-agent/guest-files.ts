import { permanentFailure } from "../../common/errors";
import { agentMessageOf, type GuestAgent } from "./agent-client";
import { guestShell } from "./guest-exec";

/**
 * Files as the guest sees them, through the agent's guest-file-* commands: every path is resolved
 * inside the guest by qemu-ga, never on the host (no host filesystem call ever takes one), so
 * nothing of the host is reachable through these. Handles are closed on every path out.
 */

/** One guest-file-read/-write carries at most this much (base64 in virsh's argument: under 128 KiB). */
export const GUEST_FILE_CHUNK_BYTES = 48 * 1024;

const MAX_GUEST_PATH = 4096;

/** A guest path must be absolute and free of NUL; what it names is the guest's business. */
export function checkGuestPath(guestPath: string): string {
  if (typeof guestPath !== "string" || !guestPath.startsWith("/") || guestPath.includes("\0") || guestPath.length > MAX_GUEST_PATH) {
    throw permanentFailure("VALIDATION_FAILED", `guest path must be absolute (got ${JSON.stringify(String(guestPath).slice(0, 200))})`);
  }
  return guestPath;
}

/** The agent's "No such file or directory" and friends as codes the API maps to 404/409/403. */
export function guestFileFailure(err: unknown, guestPath: string): unknown {
  const message = agentMessageOf(err);
  if (!message) return err;
  if (/No such file or directory/i.test(message)) return permanentFailure("NOT_FOUND", `${guestPath}: no such file in the guest`);
  if (/Is a directory/i.test(message)) return permanentFailure("CONFLICT", `${guestPath} is a directory`);
  if (/Permission denied/i.test(message)) return permanentFailure("CONFLICT", `${guestPath}: permission denied in the guest`);
  return err;
}

async function withGuestFile<T>(agent: GuestAgent, vmId: string, guestPath: string, mode: string, use: (handle: number) => Promise<T>): Promise<T> {
  let handle: number;
  try {
    handle = await agent.call<number>(vmId, "guest-file-open", { path: checkGuestPath(guestPath), mode });
  } catch (err) {
    throw guestFileFailure(err, guestPath);
  }
  try {
    return await use(handle);
  } finally {
    await agent.call(vmId, "guest-file-close", { handle }).catch(() => undefined);
  }
}

/** Reads up to `length` bytes from `offset`; `eof` when the file ends within them. */
export async function readGuestFileRange(agent: GuestAgent, vmId: string, guestPath: string, offset: number, length: number): Promise<{ data: Buffer; eof: boolean }> {
  return withGuestFile(agent, vmId, guestPath, "r", async (handle) => {
    if (offset > 0) await agent.call(vmId, "guest-file-seek", { handle, offset, whence: "set" });
    const parts: Buffer[] = [];
    let got = 0;
    while (got < length) {
      const chunk = await agent.call<{ count: number; "buf-b64": string; eof: boolean }>(vmId, "guest-file-read", { handle, count: Math.min(GUEST_FILE_CHUNK_BYTES, length - got) });
      parts.push(Buffer.from(chunk["buf-b64"], "base64"));
      got += chunk.count;
      if (chunk.eof || chunk.count === 0) return { data: Buffer.concat(parts), eof: true };
    }
    return { data: Buffer.concat(parts), eof: false };
  });
}

/** A small text file (a version, a pid), whole; files over 64 KiB are refused. */
export async function readSmallGuestFile(agent: GuestAgent, vmId: string, guestPath: string): Promise<string> {
  const limit = 64 * 1024;
  const { data, eof } = await readGuestFileRange(agent, vmId, guestPath, 0, limit);
  if (!eof) throw permanentFailure("CONTENT_TOO_LARGE", `${guestPath} is over ${limit} bytes`);
  return data.toString("utf8");
}

/**
 * Writes `data` to a guest file, replacing it ("w") or after its end ("a"), in chunks, calling
 * `progress` after each with the bytes written so far.
 */
export async function writeGuestFile(agent: GuestAgent, vmId: string, guestPath: string, data: Buffer, options: { mode: "w" | "a"; progress?: (written: number) => void }): Promise<void> {
  await withGuestFile(agent, vmId, guestPath, options.mode, async (handle) => {
    for (let at = 0; at < data.length; ) {
      const chunk = data.subarray(at, at + GUEST_FILE_CHUNK_BYTES);
      const { count } = await agent.call<{ count: number }>(vmId, "guest-file-write", { handle, "buf-b64": chunk.toString("base64") });
      if (count <= 0) throw permanentFailure("AGENT_COMMAND_FAILED", `guest-file-write of ${guestPath} wrote nothing at ${at}`);
      at += count;
      options.progress?.(at);
    }
    await agent.call(vmId, "guest-file-flush", { handle });
  });
}

export interface GuestFileEntry {
  name: string;
  type: "file" | "directory" | "symlink" | "other";
  sizeBytes: number;
  /** Permission bits, octal (e.g. "644"). */
  mode: string;
  modifiedAt: string;
}

/**
 * Lists a directory: one stat per entry, each record "size/rawmode/mtime/perms" then the name up to
 * a NUL (names may hold newlines). qemu-ga has no directory listing, so this is our constant
 * script through guest-exec, the path an argument. A missing path or a non-directory is an error.
 */
const LIST_DIRECTORY = `
[ -e "$1" ] || { echo "no such file or directory" >&2; exit 3; }
[ -d "$1" ] || { echo "not a directory" >&2; exit 4; }
cd -- "$1" || exit 5
for f in * .[!.]* ..?*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  stat -c '%s/%f/%Y/%a' -- "$f" && printf '%s\\0' "$f"
done`;

function entryType(rawModeHex: string): GuestFileEntry["type"] {
  const kind = parseInt(rawModeHex, 16) & 0o170000;
  return kind === 0o100000 ? "file" : kind === 0o040000 ? "directory" : kind === 0o120000 ? "symlink" : "other";
}

export async function listGuestDirectory(agent: GuestAgent, vmId: string, guestPath: string): Promise<GuestFileEntry[]> {
  const result = await guestShell(agent, vmId, LIST_DIRECTORY, [checkGuestPath(guestPath)]);
  if (result.exitCode === 3) throw permanentFailure("NOT_FOUND", `${guestPath}: no such directory in the guest`);
  if (result.exitCode === 4) throw permanentFailure("CONFLICT", `${guestPath} is not a directory`);
  if (result.exitCode !== 0) throw permanentFailure("AGENT_COMMAND_FAILED", `listing ${guestPath} failed: ${result.stderr.trim()}`);
  return result.stdout
    .split("\0")
    .filter((record) => record.includes("\n"))
    .map((record) => {
      const cut = record.indexOf("\n");
      const [size, rawMode, mtime, perms] = record.slice(0, cut).trim().split("/");
      return { name: record.slice(cut + 1), type: entryType(rawMode!), sizeBytes: Number(size), mode: perms!, modifiedAt: new Date(Number(mtime) * 1000).toISOString() };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Removes a file (not a directory) in the guest. */
export async function deleteGuestFile(agent: GuestAgent, vmId: string, guestPath: string): Promise<void> {
  const result = await guestShell(
    agent,
    vmId,
    '[ -e "$1" ] || [ -L "$1" ] || exit 3; [ -d "$1" ] && [ ! -L "$1" ] && exit 4; rm -f -- "$1"',
    [checkGuestPath(guestPath)],
  );
  if (result.exitCode === 3) throw permanentFailure("NOT_FOUND", `${guestPath}: no such file in the guest`);
  if (result.exitCode === 4) throw permanentFailure("CONFLICT", `${guestPath} is a directory`);
  if (result.exitCode !== 0) throw permanentFailure("AGENT_COMMAND_FAILED", `removing ${guestPath} failed: ${result.stderr.trim()}`);
}

/** Moves a written file into place (rename in the guest: a reader never sees half a file). */
export async function renameGuestFile(agent: GuestAgent, vmId: string, from: string, to: string): Promise<void> {
  const result = await guestShell(agent, vmId, 'mv -f -- "$1" "$2"', [checkGuestPath(from), checkGuestPath(to)]);
  if (result.exitCode !== 0) throw permanentFailure("AGENT_COMMAND_FAILED", `moving ${from} to ${to} failed: ${result.stderr.trim()}`);
}

/** What the API asks of a guest's files, one request per workflow (workflows/guest-files.ts). */
export type GuestFileRequest =
  | { kind: "list"; path: string }
  | { kind: "stat"; path: string }
  | { kind: "read"; path: string; offset: number; length: number }
  | { kind: "write"; path: string; mode: "w" | "a"; dataBase64: string }
  | { kind: "rename"; from: string; to: string }
  | { kind: "delete"; path: string };

/** One entry's stat, or NOT_FOUND. */
export async function statGuestFile(agent: GuestAgent, vmId: string, guestPath: string): Promise<Omit<GuestFileEntry, "name">> {
  const result = await guestShell(agent, vmId, `[ -e "$1" ] || [ -L "$1" ] || exit 3; stat -c '%s/%f/%Y/%a' -- "$1"`, [checkGuestPath(guestPath)]);
  if (result.exitCode === 3) throw permanentFailure("NOT_FOUND", `${guestPath}: no such file in the guest`);
  if (result.exitCode !== 0) throw permanentFailure("AGENT_COMMAND_FAILED", `stat of ${guestPath} failed: ${result.stderr.trim()}`);
  const [size, rawMode, mtime, perms] = result.stdout.trim().split("/");
  return { type: entryType(rawMode!), sizeBytes: Number(size), mode: perms!, modifiedAt: new Date(Number(mtime) * 1000).toISOString() };
}

/** The most one read or write request carries (Temporal payloads stay well under their 2 MB limit). */
export const GUEST_FILE_REQUEST_BYTES = 512 * 1024;

export async function guestFileRequest(agent: GuestAgent, vmId: string, request: GuestFileRequest): Promise<unknown> {
  switch (request.kind) {
    case "list":
      return listGuestDirectory(agent, vmId, request.path);
    case "stat":
      return statGuestFile(agent, vmId, request.path);
    case "read": {
      const { data, eof } = await readGuestFileRange(agent, vmId, request.path, request.offset, Math.min(request.length, GUEST_FILE_REQUEST_BYTES));
      return { dataBase64: data.toString("base64"), eof };
    }
    case "write": {
      const data = Buffer.from(request.dataBase64, "base64");
      if (data.length > GUEST_FILE_REQUEST_BYTES) throw permanentFailure("VALIDATION_FAILED", `a write request carries at most ${GUEST_FILE_REQUEST_BYTES} bytes`);
      await writeGuestFile(agent, vmId, request.path, data, { mode: request.mode });
      return { written: data.length };
    }
    case "rename":
      await renameGuestFile(agent, vmId, request.from, request.to);
      return {};
    case "delete":
      await deleteGuestFile(agent, vmId, request.path);
      return {};
  }
}
