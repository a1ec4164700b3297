import { permanentFailure } from "../../common/errors";
import type { GuestAgent } from "./agent-client";
import { killGuestProcessTree } from "./guest-exec";

/**
 * Freeze and thaw of a guest's filesystems (guest-fsfreeze-*), for consistent snapshots.
 *
 * qemu-ga has no freeze timeout: a frozen guest stays frozen until someone thaws it, and every
 * write in it blocks. The workflow thaws in a non-cancellable scope (workflows/guest-freeze.ts),
 * but that needs this host's worker alive. So before freezing, a watchdog is started inside the
 * guest (guest-exec, detached from any pipe): it sleeps for the freeze's timeout, then thaws every
 * mounted filesystem itself (FITHAW through fsfreeze, which works while the agent is in its
 * frozen state) and says so on the console. Nothing on the host side can do that: a host-side
 * timer dies with the worker, and libvirtd may restart too. The normal thaw kills the watchdog.
 * When the watchdog fired, qemu-ga still believes it is frozen until the host's thaw, which then
 * finds nothing frozen (0) and clears that state.
 */
const WATCHDOG = `
sleep "$1"
thawed=
while read -r dev mnt rest; do
  fsfreeze --unfreeze "$mnt" 2>/dev/null && thawed="$thawed $mnt"
done < /proc/mounts
[ -n "$thawed" ] && echo "quantix-agent: freeze watchdog thawed$thawed after $1 s" > /dev/console
exit 0`;

export interface FrozenGuest {
  /** Filesystems qemu-ga froze. */
  frozen: number;
  /** The guest-side watchdog that thaws at the timeout if no one else does. */
  watchdogPid: number;
}

export async function freezeGuestFilesystems(agent: GuestAgent, input: { vmId: string; timeoutMs: number }): Promise<FrozenGuest> {
  const seconds = Math.max(1, Math.ceil(input.timeoutMs / 1000));
  const { pid } = await agent.call<{ pid: number }>(input.vmId, "guest-exec", { path: "/bin/sh", arg: ["-c", WATCHDOG, "sh", String(seconds)] });
  try {
    const frozen = await agent.call<number>(input.vmId, "guest-fsfreeze-freeze", undefined, { timeoutSeconds: 60 });
    return { frozen, watchdogPid: pid };
  } catch (err) {
    // A freeze that failed part-way may have frozen some: qemu-ga thaws what it froze, we make sure.
    await agent.call(input.vmId, "guest-fsfreeze-thaw").catch(() => undefined);
    await killGuestProcessTree(agent, input.vmId, pid).catch(() => undefined);
    throw err;
  }
}

/** Thaws (idempotent: a thawed guest thaws 0) and stops the freeze's watchdog. */
export async function thawGuestFilesystems(agent: GuestAgent, input: { vmId: string; watchdogPid?: number }): Promise<{ thawed: number }> {
  const thawed = await agent.call<number>(input.vmId, "guest-fsfreeze-thaw", undefined, { timeoutSeconds: 60 });
  if (input.watchdogPid !== undefined) {
    await killGuestProcessTree(agent, input.vmId, input.watchdogPid);
    // Reap it, so the agent forgets the process (it may have exited by itself already).
    await agent.call(input.vmId, "guest-exec-status", { pid: input.watchdogPid }).catch(() => undefined);
  }
  const state = await agent.call<string>(input.vmId, "guest-fsfreeze-status");
  if (state !== "thawed") throw permanentFailure("AGENT_COMMAND_FAILED", `the guest is still ${state} after a thaw`);
  return { thawed };
}
