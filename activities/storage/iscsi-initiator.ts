import { CommandError, runCommand } from "../../common/exec";
import { permanentFailure, transientFailure } from "../../common/errors";
import { withPrivateFile } from "./private-file";
import { convertStreamed } from "./qemu-img-stream";

/**
 * The userspace iSCSI initiator (libiscsi): `iscsi-ls`/`iscsi-readcapacity16` to see a target's
 * LUNs, qemu-img (block-iscsi) to read and write them. No kernel initiator, no block devices.
 * The CHAP password reaches libiscsi tools in LIBISCSI_CHAP_PASSWORD (environment, not argv) and
 * qemu-img through `--object secret,file=` on a private temp file; it is redacted from every error.
 */

export interface TargetAccess {
  /** "host:port" */
  portal: string;
  /** The target's IQN. */
  target: string;
  chap?: { username: string; password: string };
}

/** A LUN that holds data (peripheral type DIRECT_ACCESS), with its exact capacity. */
export interface Lun {
  lun: number;
  sizeBytes: number;
}

/** A bounded wait for a portal that accepts connections but never answers a login. */
const PROBE_TIMEOUT_MS = 15_000;
/** Backstop for zeroing a whole LUN (WRITE SAME makes it quick on most arrays). */
const WIPE_TIMEOUT_MS = 3_600_000;

const NO_SUCH_LUN = /LOGICAL_UNIT_NOT_SUPPORTED/;

export function createIscsiInitiator(access: TargetAccess) {
  const redact = access.chap ? [access.chap.password] : [];
  const env = access.chap ? { ...process.env, LIBISCSI_CHAP_PASSWORD: access.chap.password } : process.env;
  const user = access.chap ? `${access.chap.username}@` : "";
  const portalUrl = `iscsi://${user}${access.portal}`;

  /** Login and transport failures mean the pool is unreachable; anything else is the caller's. */
  function failureFor(err: CommandError, what: string) {
    const detail = `${what} on ${access.target} at ${access.portal}: ${err.timedOut ? "no answer" : err.stderr}`;
    if (err.timedOut) return transientFailure("POOL_UNAVAILABLE", detail);
    if (/Authentication failure/.test(err.stderr)) return permanentFailure("POOL_UNAVAILABLE", `CHAP login rejected: ${detail}`);
    if (/Target not found/.test(err.stderr)) return permanentFailure("POOL_NOT_FOUND", detail);
    if (/Failed to log in|iscsi_service failed|Failed to connect|reconnect/i.test(err.stderr)) {
      return transientFailure("POOL_UNAVAILABLE", detail);
    }
    return permanentFailure("STORAGE_ERROR", detail);
  }

  async function libiscsi(tool: string, args: string[], what: string): Promise<string> {
    try {
      return (await runCommand(tool, args, { env, redact, timeoutMs: PROBE_TIMEOUT_MS })).stdout;
    } catch (err) {
      throw err instanceof CommandError ? failureFor(err, what) : err;
    }
  }

  /** Capacity of one LUN in bytes, or null when the target has no such LUN. */
  async function lunSize(lun: number): Promise<number | null> {
    try {
      const out = await runCommand("iscsi-readcapacity16", ["-s", `${portalUrl}/${access.target}/${lun}`], {
        env,
        redact,
        timeoutMs: PROBE_TIMEOUT_MS,
      });
      return Number(out.stdout.trim());
    } catch (err) {
      if (err instanceof CommandError && NO_SUCH_LUN.test(err.stderr)) return null;
      throw err instanceof CommandError ? failureFor(err, `reading the capacity of LUN ${lun}`) : err;
    }
  }

  /** The target's data LUNs ("Lun:1    Type:DIRECT_ACCESS (Size:63M)" under "Target:<iqn> ..."). */
  async function listLuns(): Promise<Lun[]> {
    const out = await libiscsi("iscsi-ls", ["-s", portalUrl], "listing LUNs");
    let current: string | undefined;
    const numbers = new Set<number>();
    for (const line of out.split("\n")) {
      const target = /^Target:(\S+)/.exec(line);
      if (target) current = target[1];
      const lun = /^Lun:(\d+)\s+Type:DIRECT_ACCESS/.exec(line);
      if (lun && current === access.target) numbers.add(Number(lun[1]));
    }
    const luns: Lun[] = [];
    // iscsi-ls rounds sizes to MiB; the exact capacity comes from READ CAPACITY(16).
    for (const lun of [...numbers].sort((a, b) => a - b)) {
      const sizeBytes = await lunSize(lun);
      if (sizeBytes !== null) luns.push({ lun, sizeBytes });
    }
    return luns;
  }

  /** qemu's --image-opts for a LUN (the target and portal are checked to hold no ','). */
  function imageOpts(lun: number): string {
    const auth = access.chap ? `,user=${access.chap.username},password-secret=chap` : "";
    return `driver=iscsi,transport=tcp,portal=${access.portal},target=${access.target},lun=${lun}${auth}`;
  }

  /** Runs `use` with the qemu-img arguments that define the CHAP secret object (none without CHAP). */
  function withSecretObject<T>(use: (objectArgs: string[]) => Promise<T>): Promise<T> {
    if (!access.chap) return use([]);
    return withPrivateFile(access.chap.password, (file) => use(["--object", `secret,id=chap,file=${file}`]));
  }

  /** Copies LUN `from` onto LUN `to` (which must be at least as large), reporting percent done. */
  function copyLun(from: number, to: number, onPercent: (percent: number) => void, signal?: AbortSignal): Promise<void> {
    return withSecretObject((objectArgs) =>
      convertStreamed({
        args: ["-n", ...objectArgs, "--image-opts", imageOpts(from), "--target-image-opts", imageOpts(to)],
        onPercent,
        signal,
        errorCode: "STORAGE_ERROR",
        redact,
      }),
    );
  }

  /** Overwrites a whole LUN with zeroes (qemu-img issues WRITE SAME where the target has it). */
  async function wipeLun(lun: number, sizeBytes: number): Promise<void> {
    const zeroes = `driver=null-co,size=${sizeBytes},read-zeroes=on`;
    await withSecretObject(async (objectArgs) => {
      try {
        await runCommand("qemu-img", ["convert", "-n", ...objectArgs, "--image-opts", zeroes, "--target-image-opts", imageOpts(lun)], {
          redact,
          timeoutMs: WIPE_TIMEOUT_MS,
        });
      } catch (err) {
        throw err instanceof CommandError ? failureFor(err, `zeroing LUN ${lun}`) : err;
      }
    });
  }

  return { listLuns, lunSize, copyLun, wipeLun };
}

export type IscsiInitiator = ReturnType<typeof createIscsiInitiator>;
