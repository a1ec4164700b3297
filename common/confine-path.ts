import { realpath } from "node:fs/promises";
import path from "node:path";
import { permanentFailure } from "./errors";

/**
 * Resolves a user-supplied relative path inside `root`, refusing anything that could escape it:
 * absolute paths, `..` segments, NUL bytes, percent-encoded traversal, and symlinks whose target
 * lies outside the root. Returns the real absolute path. Throws INVALID_PATH (never lists).
 */
export async function confinePath(root: string, userPath: string): Promise<string> {
  const reject = (why: string) => permanentFailure("INVALID_PATH", `path ${JSON.stringify(userPath)} ${why}`);
  if (userPath.includes("\0")) throw reject("contains a NUL byte");
  if (/%[0-9a-f]{2}/i.test(userPath)) throw reject("contains percent-encoding");
  if (userPath.includes("\\")) throw reject("contains a backslash");
  if (path.isAbsolute(userPath)) throw reject("is absolute");
  const segments = userPath.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.some((s) => s === "..")) throw reject("leaves the pool");
  const realRoot = await realpath(root);
  const candidate = path.join(realRoot, ...segments);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw permanentFailure("NOT_FOUND", `path ${JSON.stringify(userPath)} does not exist`);
  }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) throw reject("leaves the pool");
  return real;
}
