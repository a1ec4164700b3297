import { runCommand } from "../../common/exec";

/** Helpers for test files that start a service of their own (tgtd, Ceph) on fixed ports. */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until no process named exactly `name` runs (another test run's service on the same fixed
 * ports), polling every 10 s for up to 10 minutes.
 */
export async function waitForNoOther(name: string, { pollMs = 10_000, timeoutMs = 600_000 } = {}): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; await sleep(pollMs)) {
    const running = await runCommand("pgrep", ["-x", name]).then(
      () => true,
      () => false,
    );
    if (!running) return;
    if (Date.now() > deadline) throw new Error(`another ${name} kept running for ${timeoutMs / 60_000} minutes`);
  }
}
