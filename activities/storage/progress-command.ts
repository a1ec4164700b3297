import { spawn } from "node:child_process";
import { permanentFailure, type ErrorCode } from "../../common/errors";

/**
 * Runs a long copy command (`qemu-img convert -p`, `rbd cp`) streaming its percent-done reports and
 * stoppable by an AbortSignal. Spawned directly rather than through common/exec's runCommand, which
 * buffers output until exit and cannot be aborted.
 */

export interface ProgressCommand {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Where the command prints progress: qemu-img -p on stdout, the rbd CLI on stderr. */
  progressOn: "stdout" | "stderr";
  onPercent: (percent: number) => void;
  signal?: AbortSignal;
  /** Error code for a failed run. */
  errorCode: ErrorCode;
  /** Blanked out of error messages. */
  redact: string[];
}

/** qemu-img: "    (12.50/100%)\r"; rbd: "Image copy: 12% complete...\r". */
const PERCENT = /(\d+(?:\.\d+)?)(?:\/100)?%/;
const PERCENTS = new RegExp(PERCENT.source, "g");

/**
 * Resolves when the command succeeded. Rejects with CANCELLED once the signal aborted, even if the
 * command won the race, and only after the process has exited: the caller can then remove the
 * partial target without racing a writer that still has it open.
 */
export function runWithProgress(req: ProgressCommand): Promise<void> {
  const redact = (text: string) => req.redact.reduce((out, s) => (s ? out.split(s).join("***") : out), text);
  return new Promise((resolve, reject) => {
    if (req.signal?.aborted) return reject(permanentFailure("CANCELLED", "copy cancelled before it started"));
    const child = spawn(req.command, req.args, { stdio: ["ignore", "pipe", "pipe"], env: req.env ?? process.env });
    const abort = () => child.kill("SIGKILL");
    req.signal?.addEventListener("abort", abort, { once: true });
    let stderr = "";
    // Each report ends with "\r"; keep a partial one until the rest of it arrives.
    let pending = "";
    const progress = (chunk: string) => {
      const reports = (pending + chunk).split("\r");
      pending = reports.pop() ?? "";
      for (const match of reports.join("\r").matchAll(PERCENTS)) req.onPercent(Number(match[1]));
    };
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (req.progressOn === "stdout") progress(chunk);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      if (req.progressOn === "stderr") progress(chunk);
      stderr += chunk;
    });
    child.on("error", (err) => {
      req.signal?.removeEventListener("abort", abort);
      reject(permanentFailure(req.errorCode, `${req.command} could not run: ${err.message}`));
    });
    child.on("close", (code) => {
      req.signal?.removeEventListener("abort", abort);
      if (req.signal?.aborted) return reject(permanentFailure("CANCELLED", "copy cancelled"));
      if (code === 0) return resolve();
      // Progress reports are noise in an error message: keep the lines that are not one.
      const detail = stderr.split(/[\r\n]/).filter((l) => l.trim() && !PERCENT.test(l)).join("\n");
      reject(permanentFailure(req.errorCode, redact(`${req.command} ${req.args.join(" ")} failed (exit ${code}): ${detail}`)));
    });
  });
}
