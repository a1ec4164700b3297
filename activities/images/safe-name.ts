import path from "node:path";
import { permanentFailure } from "../../common/errors";

/**
 * Ids become file names in a pool directory, so they must be one plain path segment: no
 * separators, no leading dot (hidden and `..`), nothing a shell or tool could read as an option.
 */
const SAFE_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function assertSafeFileName(what: string, name: string): void {
  if (!SAFE_FILE_NAME.test(name)) {
    throw permanentFailure("VALIDATION_FAILED", `${what} ${JSON.stringify(name)} is not a safe file name (letters, digits, ".", "_", "-"; at most 128)`);
  }
}

export function assertAbsoluteDir(what: string, dir: string): void {
  if (!path.isAbsolute(dir) || dir.includes("\0")) {
    throw permanentFailure("VALIDATION_FAILED", `${what} ${JSON.stringify(dir)} must be an absolute path`);
  }
}
