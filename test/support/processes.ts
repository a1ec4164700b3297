import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";

/**
 * One real process of the system (a host worker, the control-plane worker, the API, run-system),
 * run from its own entry file under tsx as production runs it, with its output appended to a log
 * file. Each start makes a new process group, so kill() reaches whatever the child started too,
 * and a test can SIGKILL it ("killed" means SIGKILL: no handler, no graceful stop), freeze it
 * (SIGSTOP: it holds what it was given and answers nothing) and start it again.
 */
export interface ChildOptions {
  /** For messages: "host worker t1a2b-a". */
  name: string;
  /** The entry file, relative to the repository root (workers/host.ts) or an argument array for a non-node command. */
  entry: string | { command: string; args: string[] };
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** True once the process serves (polls its queue, answers HTTP): start() waits for it. */
  isReady(child: RealProcess): Promise<boolean>;
  readyTimeoutMs?: number;
}

const root = path.resolve(__dirname, "../..");

export class RealProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** When the current process was spawned and when it became ready (epoch ms). */
  spawnedAt = 0;
  readyAt = 0;
  /** Every pid this handle has spawned (a test checks none of them is left). */
  readonly pids: number[] = [];

  constructor(readonly options: ChildOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The exit code of the last process, once it exited by itself (null while running or if signalled). */
  get exitCode(): number | null {
    return this.child?.exitCode ?? null;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.options.name} is already running (pid ${this.pid})`);
    const log = openSync(this.options.logFile, "a");
    writeSync(log, `\n===== ${new Date().toISOString()} start ${this.options.name}\n`);
    const { entry } = this.options;
    const [command, args] = typeof entry === "string" ? [process.execPath, ["--import", "tsx", path.join(root, entry)]] : [entry.command, entry.args];
    // NODE_OPTIONS of jest (--experimental-vm-modules) is not the product's: children run as in production.
    const env = { ...this.options.env, NODE_OPTIONS: "" };
    const child = spawn(command, args, { cwd: root, env, detached: true, stdio: ["ignore", log, log] });
    closeSync(log);
    this.child = child;
    this.spawnedAt = Date.now();
    this.readyAt = 0;
    if (child.pid) this.pids.push(child.pid);
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    const deadline = Date.now() + (this.options.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (!this.running) throw new Error(`${this.options.name} exited while starting (${child.exitCode ?? child.signalCode}):\n${this.logTail()}`);
      if (await this.options.isReady(this).catch(() => false)) break;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.options.name} did not become ready:\n${this.logTail()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.readyAt = Date.now();
  }

  /** Sends `signal` to the process group (SIGKILL by default) and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.running || !this.child?.pid) return;
    signalGroup(this.child.pid, signal);
    // A frozen process does not act on SIGTERM until it is thawed.
    if (signal !== "SIGKILL") signalGroup(this.child.pid, "SIGCONT");
    await this.exited;
  }

  /** SIGSTOP: the process keeps its sockets and the tasks it was handed, and does nothing. */
  freeze(): void {
    if (this.running && this.child?.pid) signalGroup(this.child.pid, "SIGSTOP");
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Resolves when the current process exits by itself (a supervised child, a crash). */
  whenExited(): Promise<void> {
    return this.exited;
  }

  logTail(lines = 40): string {
    try {
      return readFileSync(this.options.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** True while a process with this pid exists (a zombie our own child left counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 3 (after the parenthesised name) is the state; Z is a zombie, already dead.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** The pids of every live process in a process group (from /proc: a kill by name would hit others' processes). */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // state is fields[0], ppid fields[1], pgrp fields[2]
      if (Number(fields[2]) === pgid && fields[0] !== "Z") members.push(Number(entry));
    } catch {
      // the process ended while we read /proc
    }
  }
  return members;
}

/** Every live descendant of a process (children, their children...), from /proc's parent links. */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z") parents.set(Number(entry), Number(fields[1]));
    } catch {
      // ended while we read /proc
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** The command line of a process ("" when it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return "";
  }
}
