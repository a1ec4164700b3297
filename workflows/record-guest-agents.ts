/**
 * recordGuestAgents — one long-running workflow per host that records its guest agents' statuses.
 * The host worker's reporter (workers/guest-agent-reporter.ts) signals it with what changed
 * (signal-with-start, so the first report starts it); each report is written by a control-plane
 * activity. Reports name only the VMs that changed, so pending ones are merged per VM (the newest
 * observation of each wins) rather than superseded. The history is kept short by continuing as new.
 */
import { condition, continueAsNew, defineSignal, setHandler } from "@temporalio/workflow";
import type { GuestAgentReport, ReportedGuestAgent } from "../activities/database/guest-agents";
import { database } from "./database-activities";

export const guestAgentReportSignal = defineSignal<[GuestAgentReport]>("guestAgentReport");

const WRITES_PER_RUN = 200;

export async function recordGuestAgents(hostId: string): Promise<void> {
  let pending = new Map<string, ReportedGuestAgent>();
  setHandler(guestAgentReportSignal, (report) => {
    for (const agent of report.agents) pending.set(agent.vmId, agent);
  });
  for (let written = 0; written < WRITES_PER_RUN; written++) {
    await condition(() => pending.size > 0);
    const batch = [...pending.values()];
    pending = new Map();
    await database.guestAgentsReported({ hostId, agents: batch });
  }
  // Reports that arrived during the last write are not lost: the next run records them.
  if (pending.size > 0) await database.guestAgentsReported({ hostId, agents: [...pending.values()] });
  await continueAsNew<typeof recordGuestAgents>(hostId);
}
