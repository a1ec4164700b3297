/**
 * monitorHost — one long-running workflow per host that records the host's pool reports.
 * The host worker signals it (signal-with-start, so the first report starts it) every report
 * interval; each report updates the host's StoragePoolHost rows and its lastSeenAt. Staleness is
 * not decided here: readers compare reportedAt with now, so a host whose reports stop (and so
 * this workflow's signals) goes stale without anything having to notice. Only the newest pending
 * report is recorded: older ones are superseded. The history is kept short by continuing as new.
 */
import { condition, continueAsNew, defineSignal, setHandler } from "@temporalio/workflow";
import type { HostPoolReport } from "../activities/database/pools";
import { database } from "./database-activities";

export const poolReportSignal = defineSignal<[HostPoolReport]>("poolReport");

// ~100 reports (50 minutes at the default interval) per run keeps each history well under its limits.
const REPORTS_PER_RUN = 100;

export async function monitorHost(hostId: string): Promise<void> {
  let latest: HostPoolReport | undefined;
  setHandler(poolReportSignal, (report) => {
    latest = report;
  });
  for (let recorded = 0; recorded < REPORTS_PER_RUN; recorded++) {
    await condition(() => latest !== undefined);
    const report = latest!;
    latest = undefined;
    await database.poolsReported(report);
  }
  // A report that arrived during the last write is not lost: the next run records it.
  if (latest) await database.poolsReported(latest);
  await continueAsNew<typeof monitorHost>(hostId);
}
