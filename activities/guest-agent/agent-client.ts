import { permanentFailure, transientFailure } from "../../common/errors";
import { CommandError, runCommand } from "../../common/exec";
import { domainName } from "../libvirt/domain-xml";

/**
 * The QEMU guest agent of one host's domains, reached through libvirt. The @unraid/libvirt binding
 * has no agent calls, so each command is `virsh -c <uri> qemu-agent-command <domain> <json>` with
 * an argument array (no shell): the JSON is ours, user values only ever sit inside it as strings.
 */
export interface GuestAgent {
  /** Runs one agent command and returns its `return` value; typed failures (see agentFailure). */
  call<T = unknown>(vmId: string, execute: string, args?: Record<string, unknown>, options?: { timeoutSeconds?: number }): Promise<T>;
}

/** How long the agent may take to answer one command (libvirt's own default is 5 s; TCG guests are slow). */
const DEFAULT_AGENT_TIMEOUT_SECONDS = 10;
/** virsh itself gets this much longer than the agent, so libvirt's own timeout speaks first. */
const VIRSH_GRACE_MS = 20_000;

export function createVirshGuestAgent(uri: string): GuestAgent {
  return {
    async call<T>(vmId: string, execute: string, args?: Record<string, unknown>, options: { timeoutSeconds?: number } = {}): Promise<T> {
      const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_AGENT_TIMEOUT_SECONDS;
      const command = JSON.stringify(args === undefined ? { execute } : { execute, arguments: args });
      try {
        const { stdout } = await runCommand("virsh", ["-c", uri, "-q", "qemu-agent-command", domainName(vmId), command, "--timeout", String(timeoutSeconds)], {
          timeoutMs: timeoutSeconds * 1000 + VIRSH_GRACE_MS,
        });
        return (JSON.parse(stdout) as { return: T }).return;
      } catch (err) {
        throw agentFailure(vmId, execute, err);
      }
    },
  };
}

/**
 * libvirt's answers, as stable codes: AGENT_NOT_CONNECTED (no agent on the channel, or the guest
 * is off), AGENT_TIMEOUT (the agent did not answer in time: retrying may help), AGENT_COMMAND_FAILED
 * (the agent answered with an error: its message is kept, e.g. "No such file or directory"),
 * DOMAIN_NOT_RUNNING and NOT_FOUND for the domain itself.
 */
function agentFailure(vmId: string, execute: string, err: unknown) {
  if (!(err instanceof CommandError)) return err;
  const what = `${execute} on ${domainName(vmId)}`;
  if (err.timedOut) return transientFailure("AGENT_TIMEOUT", `${what}: virsh did not return`);
  const stderr = err.stderr.replace(/^error: /gm, "").trim();
  if (/failed to get domain|Domain not found/i.test(stderr)) return permanentFailure("NOT_FOUND", `${what}: no such domain on this host`);
  if (/domain is not running/i.test(stderr)) return permanentFailure("DOMAIN_NOT_RUNNING", `${what}: the domain is not running`);
  if (/agent is not connected/i.test(stderr)) return permanentFailure("AGENT_NOT_CONNECTED", `${what}: the guest agent is not connected`);
  if (/not responding|timed out|timeout/i.test(stderr)) return transientFailure("AGENT_TIMEOUT", `${what}: the guest agent did not answer in time (${stderr})`);
  const agentMessage = /unable to execute QEMU agent command '[^']+': (.*)$/s.exec(stderr)?.[1] ?? stderr;
  return permanentFailure("AGENT_COMMAND_FAILED", `${what}: ${agentMessage}`, { agentMessage });
}

/** The agent's own error text of an AGENT_COMMAND_FAILED failure (for callers that branch on it). */
export function agentMessageOf(err: unknown): string | undefined {
  const details = (err as { details?: unknown[] } | undefined)?.details?.[0] as { agentMessage?: string } | undefined;
  return details?.agentMessage;
}
