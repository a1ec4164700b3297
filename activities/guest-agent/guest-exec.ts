import { Context } from "@temporalio/activity";
import { CancelledFailure } from "@temporalio/common";
import { permanentFailure } from "../../common/errors";
import { agentMessageOf, type GuestAgent } from "./agent-client";

/** What to run in the guest: a program with arguments, or a script for the guest's /bin/sh. */
export interface GuestCommand {
  vmId: string;
  /** Absolute path of the program in the guest (ignored when `script` is given). */
  path?: string;
  /** A script run as `/bin/sh -c <script> sh <args...>`: the guest's shell, the user's own code. */
  script?: string;
  args: string[];
  /** Given to the program's standard input. */
  stdin?: string;
  timeLimitMs: number;
  /** Each of stdout and stderr is cut to this many bytes (truncated is flagged). */
  maxOutputBytes: number;
}

export interface GuestCommandResult {
  pid: number;
  /** Null when the process ended by a signal (killed at its time limit, or by someone). */
  exitCode: number | null;
  signal: number | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** Killed because it ran past its time limit. */
  timedOut: boolean;
  durationMs: number;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  "out-data"?: string;
  "err-data"?: string;
  "out-truncated"?: boolean;
  "err-truncated"?: boolean;
}

const POLL_MS = 250;

/**
 * Kills a guest process and everything it started (an orphaned child would keep the output pipes
 * open, and the agent would wait for it): the tree is read from /proc (no pgrep in every guest),
 * stopped so no member can start more, read again, and killed. Our constant script; the pid is an
 * argument.
 */
const KILL_TREE = `
tree() {
  for s in /proc/[0-9]*/stat; do
    read -r l < "$s" 2>/dev/null || continue
    p=\${s%/stat}; r=\${l##*) }; set -- $r; echo "\${p#/proc/} $2"
  done | awk -v t="$1" '{ pp[$1] = $2 } END { n = 1; q[1] = t; out = t; while (n > 0) { c = q[n--]; for (p in pp) if (pp[p] == c) { q[++n] = p; out = out " " p } } print out }'
}
t=$1
kill -STOP $(tree "$t") 2>/dev/null
kill -KILL $(tree "$t") 2>/dev/null
exit 0`;

export async function killGuestProcessTree(agent: GuestAgent, vmId: string, pid: number): Promise<void> {
  await guestShell(agent, vmId, KILL_TREE, [String(pid)]);
}

/**
 * Runs one of our own short scripts with the guest's /bin/sh (values as positional arguments,
 * never spliced into the script) and waits for it, so the agent forgets the process.
 */
export async function guestShell(agent: GuestAgent, vmId: string, script: string, args: string[], timeoutMs = 60_000): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  const { pid } = await agent.call<{ pid: number }>(vmId, "guest-exec", { path: "/bin/sh", arg: ["-c", script, "sh", ...args], "capture-output": true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await agent.call<ExecStatus>(vmId, "guest-exec-status", { pid });
    if (status.exited) {
      const text = (b64?: string) => Buffer.from(b64 ?? "", "base64").toString("utf8");
      return { exitCode: status.exitcode ?? null, stdout: text(status["out-data"]), stderr: text(status["err-data"]) };
    }
    if (Date.now() > deadline) throw permanentFailure("AGENT_TIMEOUT", `guest script (pid ${pid}) still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function cut(b64: string | undefined, max: number, agentTruncated: boolean | undefined): { text: string; truncated: boolean } {
  const bytes = Buffer.from(b64 ?? "", "base64");
  return { text: bytes.subarray(0, max).toString("utf8"), truncated: bytes.length > max || Boolean(agentTruncated) };
}

/**
 * Runs a command in the guest (guest-exec) and waits for it, heartbeating its pid: a retry after
 * a worker crash resumes waiting for the same process instead of running it a second time. At the
 * time limit, or when the workflow is cancelled, the process tree is killed; the result then says
 * so (timeout) or the activity ends cancelled.
 */
export async function runGuestCommand(agent: GuestAgent, command: GuestCommand): Promise<GuestCommandResult> {
  const ctx = Context.current();
  const { vmId } = command;
  const resumed = ctx.info.heartbeatDetails as { pid: number; startedAt: number } | undefined;
  let pid: number;
  let startedAt: number;
  if (resumed?.pid) {
    ({ pid, startedAt } = resumed);
  } else {
    const program = command.script !== undefined ? "/bin/sh" : command.path;
    if (!program?.startsWith("/")) throw permanentFailure("VALIDATION_FAILED", "path must be an absolute path in the guest");
    const arg = command.script !== undefined ? ["-c", command.script, "sh", ...command.args] : command.args;
    const started = await agent.call<{ pid: number }>(vmId, "guest-exec", {
      path: program,
      arg,
      "capture-output": true,
      ...(command.stdin !== undefined ? { "input-data": Buffer.from(command.stdin).toString("base64") } : {}),
    });
    pid = started.pid;
    startedAt = Date.now();
    ctx.heartbeat({ pid, startedAt });
  }
  let killedForTime = false;
  let killedForCancel = false;
  for (;;) {
    let status: ExecStatus;
    try {
      status = await agent.call<ExecStatus>(vmId, "guest-exec-status", { pid });
    } catch (err) {
      // The agent restarted (or another caller reaped it): the process and its output are gone.
      if (/Invalid parameter 'pid'/.test(agentMessageOf(err) ?? "")) throw permanentFailure("AGENT_COMMAND_FAILED", `guest process ${pid} is unknown to the agent (it restarted?): output lost`);
      throw err;
    }
    if (status.exited) {
      if (killedForCancel) throw new CancelledFailure("cancelled: the guest process was killed");
      const stdout = cut(status["out-data"], command.maxOutputBytes, status["out-truncated"]);
      const stderr = cut(status["err-data"], command.maxOutputBytes, status["err-truncated"]);
      return {
        pid,
        exitCode: status.exitcode ?? null,
        signal: status.signal ?? null,
        stdout: stdout.text,
        stderr: stderr.text,
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
        timedOut: killedForTime,
        durationMs: Date.now() - startedAt,
      };
    }
    if (!killedForTime && !killedForCancel && Date.now() - startedAt > command.timeLimitMs) {
      killedForTime = true;
      await killGuestProcessTree(agent, vmId, pid);
    }
    ctx.heartbeat({ pid, startedAt });
    const cancelled = await Promise.race([ctx.cancelled.then(() => false, () => true), new Promise<false>((r) => setTimeout(() => r(false), POLL_MS))]);
    if (cancelled && !killedForCancel) {
      killedForCancel = true;
      await killGuestProcessTree(agent, vmId, pid);
    }
  }
}
