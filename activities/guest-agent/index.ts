import type { GuestAgent } from "./agent-client";
import { runGuestCommand, type GuestCommand } from "./guest-exec";
import { createAgentUpgradeActivities } from "./upgrade";
import { freezeGuestFilesystems, thawGuestFilesystems } from "./freeze";
import { guestFileRequest, type GuestFileRequest } from "./guest-files";

/** Host activities through the guest agent of this host's domains (activities/guest-agent/). */
export function createGuestAgentActivities(agent: GuestAgent, config: { agentPackageDir: string }) {
  return {
    /** guest-exec with a time limit and an output cap; cancel kills the process tree. */
    async runGuestCommand(command: GuestCommand) {
      return runGuestCommand(agent, command);
    },
    /** Freezes the guest's filesystems, with a guest-side watchdog that thaws them at `timeoutMs`. */
    async freezeGuestFilesystems(input: { vmId: string; timeoutMs: number }) {
      return freezeGuestFilesystems(agent, input);
    },
    async thawGuestFilesystems(input: { vmId: string; watchdogPid?: number }) {
      return thawGuestFilesystems(agent, input);
    },
    /** A file request in the guest's own filesystem (list, stat, read or write a chunk, rename, delete). */
    async guestFileRequest(input: { vmId: string; request: GuestFileRequest }) {
      return guestFileRequest(agent, input.vmId, input.request);
    },
    ...createAgentUpgradeActivities(agent, config.agentPackageDir),
  };
}
