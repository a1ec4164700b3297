import { execFile } from "node:child_process";
import { permanentFailure, transientFailure, type ErrorCode } from "./errors";

export interface RunOptions {
  /** Kills the command after this long; a hung daemon must fail the step, not stall it. */
  timeoutMs?: number;
  /** Written to the command's stdin (how secrets reach a command without showing in `ps`). */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  /** Error code to raise on a non-zero exit (default COMMAND_FAILED). */
  errorCode?: ErrorCode;
  /** Retry a non-zero exit (default false: most tool failures are deterministic). */
  retryable?: boolean;
  /** Strings to blank out of any error message (passwords, keys). */
  redact?: string[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;

export class CommandError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

function redactText(text: string, secrets: string[] | undefined): string {
  let out = text;
  for (const s of secrets ?? []) if (s) out = out.split(s).join("***");
  return out;
}

/**
 * Runs one external command with an argument array: no shell ever sees user input.
 * Rejects with CommandError (exit code, stderr) so callers can branch on "already exists" etc.
 */
export function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args as string[],
      { timeout, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const timedOut = Boolean((error as NodeJS.ErrnoException & { killed?: boolean }).killed) && error.signal === "SIGKILL";
        const exitCode = typeof error.code === "number" ? error.code : null;
        const safeStderr = redactText(stderr.trim(), options.redact);
        const what = `${command} ${redactText(args.join(" "), options.redact)}`;
        const message = timedOut
          ? `${command} timed out after ${timeout} ms`
          : `${what} failed (exit ${exitCode ?? error.code}): ${safeStderr || error.message}`;
        reject(new CommandError(message, command, exitCode, safeStderr, timedOut));
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** runCommand for activities: failures become typed ApplicationFailures. */
export async function runTool(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  try {
    return await runCommand(command, args, options);
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    if (err.timedOut) throw transientFailure("COMMAND_TIMEOUT", err.message);
    const code = options.errorCode ?? "COMMAND_FAILED";
    throw options.retryable ? transientFailure(code, err.message) : permanentFailure(code, err.message);
  }
}
