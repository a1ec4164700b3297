import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CommandError, runCommand } from "../../common/exec";
import { permanentFailure, transientFailure, type ErrorCode } from "../../common/errors";

/**
 * How the host reaches one Ceph cluster as one client: the `rbd`/`ceph` CLIs with JSON output
 * (there is no Node binding for librados/librbd), and the small client conf that the CLIs and
 * libvirt's <config file> both read.
 *
 * A monitor that does not answer must fail a step in seconds: librados otherwise hunts for a
 * monitor for 300 s. The conf sets `client mount timeout` (also what bounds `virsh start`), argv adds
 * mon/osd op timeouts for the CLIs only (a guest's I/O must wait out a slow OSD, not fail), and a
 * process timeout is the backstop for anything else that hangs.
 */

export interface CephClientConfig {
  monitors: string[];
  user: string;
  /** Path of the client keyring file. */
  keyring: string;
  /** Where to write the client conf; default: a file per cluster and client under the OS temp dir. */
  confPath?: string;
}

const MOUNT_TIMEOUT_S = 10;
const MON_OP_TIMEOUT_S = 15;
const OSD_OP_TIMEOUT_S = 30;
const PROCESS_TIMEOUT_MS = 60_000;

export type CliOutcome = { ok: true; stdout: string } | { ok: false; exitCode: number | null; message: string };

/** librados' words (and exit codes) for "no monitor answered". */
const UNREACHABLE = /couldn't connect to the cluster|error connecting to the cluster|authenticate timed out|^timed out/m;
const ETIMEDOUT = 110;
/** A wrong key, or caps that do not allow the call: EACCES, as exit code or as rbd and ceph word it. */
const EACCES = 13;
const ACCESS_DENIED = /\(13\) Permission denied|\[errno 13\]/;

export function defaultConfPath(pool: string, client: CephClientConfig): string {
  const cluster = createHash("sha256").update(`${client.monitors.join(",")}|${client.user}|${pool}`).digest("hex").slice(0, 12);
  return path.join(os.tmpdir(), "quantix-ceph", `${pool}-${cluster}.conf`);
}

export function createCephCli(client: CephClientConfig, confPath: string) {
  const confText = ["[global]", `mon host = ${client.monitors.join(",")}`, `client mount timeout = ${MOUNT_TIMEOUT_S}`, ""].join("\n");

  /** Writes the conf when missing or different (atomically: a reader never sees half a file). */
  async function ensureConf(): Promise<string> {
    const current = await readFile(confPath, "utf8").catch(() => undefined);
    if (current === confText) return confPath;
    await mkdir(path.dirname(confPath), { recursive: true });
    const staging = `${confPath}.${process.pid}.${Date.now()}`;
    await writeFile(staging, confText, { mode: 0o644 });
    await rename(staging, confPath);
    return confPath;
  }

  const clientArgs = (conf: string) => [
    "--conf", conf,
    "-m", client.monitors.join(","),
    "--id", client.user,
    "--keyring", client.keyring,
    "--rados_mon_op_timeout", String(MON_OP_TIMEOUT_S),
    "--rados_osd_op_timeout", String(OSD_OP_TIMEOUT_S),
  ];

  /** The full argv of a CLI call, for the long ones that stream progress. */
  async function argv(tool: "rbd" | "ceph", args: string[]): Promise<string[]> {
    const extra = tool === "ceph" ? ["--connect-timeout", String(MOUNT_TIMEOUT_S)] : [];
    return [...clientArgs(await ensureConf()), ...extra, ...args];
  }

  /**
   * Runs one CLI call. An unreachable cluster or rejected credentials throw POOL_UNAVAILABLE; any
   * other failure comes back as an outcome so callers can branch on the errno exit code (2 ENOENT,
   * 16 EBUSY, 17 EEXIST, ...).
   */
  async function attempt(tool: "rbd" | "ceph", args: string[]): Promise<CliOutcome> {
    try {
      const { stdout } = await runCommand(tool, await argv(tool, args), { timeoutMs: PROCESS_TIMEOUT_MS });
      return { ok: true, stdout };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      if (err.timedOut) throw transientFailure("POOL_UNAVAILABLE", `${tool} ${args[0] ?? ""}: ${err.message}`);
      // Checked first: a rejected key also reads "couldn't connect to the cluster".
      if (err.exitCode === EACCES || ACCESS_DENIED.test(err.stderr)) {
        throw permanentFailure("POOL_UNAVAILABLE", `Ceph refused client.${client.user} (key or caps): ${err.stderr}`);
      }
      if (err.exitCode === ETIMEDOUT || UNREACHABLE.test(err.stderr)) {
        throw transientFailure("POOL_UNAVAILABLE", `no Ceph monitor of ${client.monitors.join(",")} answered: ${err.stderr}`);
      }
      return { ok: false, exitCode: err.exitCode, message: err.message };
    }
  }

  /** attempt() that fails with `code` on any error. */
  async function run(tool: "rbd" | "ceph", args: string[], code: ErrorCode = "STORAGE_ERROR"): Promise<string> {
    const outcome = await attempt(tool, args);
    if (!outcome.ok) throw permanentFailure(code, outcome.message);
    return outcome.stdout;
  }

  /** The base64 key of the client, from its keyring file (for libvirt's secret only). */
  async function readKey(): Promise<string> {
    const text = await readFile(client.keyring, "utf8").catch(() => {
      throw permanentFailure("VALIDATION_FAILED", `cannot read keyring ${client.keyring}`);
    });
    const section = text.split(/^\s*\[/m).find((s) => s.startsWith(`client.${client.user}]`));
    const key = section && /^\s*key\s*=\s*(\S+)\s*$/m.exec(section)?.[1];
    if (!key) throw permanentFailure("VALIDATION_FAILED", `keyring ${client.keyring} has no key for client.${client.user}`);
    return key;
  }

  return { ensureConf, argv, attempt, run, readKey };
}

export type CephCli = ReturnType<typeof createCephCli>;
