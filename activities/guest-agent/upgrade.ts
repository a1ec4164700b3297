import { readFile } from "node:fs/promises";
import path from "node:path";
import { Context } from "@temporalio/activity";
import { permanentFailure, transientFailure } from "../../common/errors";
import type { GuestAgent } from "./agent-client";
import { loadAgentPackage, sha256sums } from "./agent-package";
import { guestShell } from "./guest-exec";
import { readSmallGuestFile, writeGuestFile } from "./guest-files";
import { readGuestAgentStatus, RUNNING_PACKAGE_VERSION_FILE } from "./status";

/**
 * The host side of upgradeAgent (workflows/upgrade-agent.ts). The guest side is our helper
 * script (guest/agent-upgrade.sh), pushed with the package: the A/B switch and the rollback
 * watchdog it arms are what restore the previous agent when the new one never answers.
 */
const GUEST_ROOT = "/var/lib/quantix-agent";
const HELPER_SOURCE = path.join(__dirname, "guest", "agent-upgrade.sh");
const POLL_MS = 1_000;

const stagingDir = (upgradeId: string) => `${GUEST_ROOT}/staging/${upgradeId}`;
const helperPath = (upgradeId: string) => `${stagingDir(upgradeId)}/agent-upgrade.sh`;

export interface UpgradeRef {
  vmId: string;
  /** The operation's id: names the upgrade's staging and record in the guest. */
  upgradeId: string;
}

async function helper(agent: GuestAgent, ref: UpgradeRef, args: string[], timeoutMs = 120_000) {
  return guestShell(agent, ref.vmId, 'exec sh "$@"', [helperPath(ref.upgradeId), args[0]!, ref.upgradeId, ...args.slice(1)], timeoutMs);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The package version of the agent that answers now, or null when none does: the supervisor's
 * record, read through the agent itself (so an answer proves that agent runs).
 */
async function answeringVersion(agent: GuestAgent, vmId: string): Promise<string | null> {
  return readSmallGuestFile(agent, vmId, RUNNING_PACKAGE_VERSION_FILE).then(
    (text) => text.trim(),
    () => null,
  );
}

/** Polls until the agent answers with `version` running, heartbeating; false at the deadline. */
async function waitForRunningVersion(agent: GuestAgent, vmId: string, version: string, timeoutMs: number): Promise<boolean> {
  const ctx = Context.current();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const seen = await answeringVersion(agent, vmId);
    ctx.heartbeat({ seen });
    if (seen === version) return true;
    await Promise.race([sleep(POLL_MS), ctx.cancelled]);
  }
  return false;
}

export function createAgentUpgradeActivities(agent: GuestAgent, packageDir: string) {
  return {
    /** What runs in the guest now, and the package of `version` in this host's library. */
    async inspectAgentUpgrade(input: { vmId: string; version: string }) {
      const status = await readGuestAgentStatus(agent, input.vmId);
      if (!status.connected) throw permanentFailure("AGENT_NOT_CONNECTED", `the guest agent of VM ${input.vmId} does not answer`);
      // Without our layout there is no supervisor running `current`, nothing to switch or roll back.
      if (!status.packageVersion) throw permanentFailure("NOT_SUPPORTED", `the agent of VM ${input.vmId} was not installed from a Quantix agent package: upgrade it with the guest's own tools`);
      const pkg = await loadAgentPackage(packageDir, input.version);
      return { running: { package: status.packageVersion, qemuGa: status.qemuGaVersion }, packageSha256: pkg.sha256, files: pkg.manifest.files.length };
    },

    /** Pushes our helper, the manifest's checksums and the package into the guest's staging, in chunks. */
    async pushAgentPackage(input: UpgradeRef & { version: string }) {
      const ctx = Context.current();
      const pkg = await loadAgentPackage(packageDir, input.version);
      const dir = stagingDir(input.upgradeId);
      const made = await guestShell(agent, input.vmId, 'mkdir -p "$1"', [dir]);
      if (made.exitCode !== 0) throw permanentFailure("AGENT_COMMAND_FAILED", `cannot make ${dir} in the guest: ${made.stderr}`);
      await writeGuestFile(agent, input.vmId, helperPath(input.upgradeId), await readFile(HELPER_SOURCE), { mode: "w" });
      await writeGuestFile(agent, input.vmId, `${dir}/SHA256SUMS`, Buffer.from(sha256sums(pkg.manifest)), { mode: "w" });
      await writeGuestFile(agent, input.vmId, `${dir}/package.tar`, pkg.bytes, {
        mode: "w",
        progress: (written) => ctx.heartbeat({ bytesDone: written, bytesTotal: pkg.bytes.length }),
      });
      return { bytes: pkg.bytes.length };
    },

    /** Undo of the push: the staging goes (after a rollback, the helper already removed it). */
    async removeAgentStaging(input: UpgradeRef) {
      await guestShell(agent, input.vmId, 'rm -rf "$1"', [stagingDir(input.upgradeId)]);
    },

    /** The package's sha256 and every file's (against the manifest), computed inside the guest. */
    async verifyAgentPackage(input: UpgradeRef & { sha256: string }) {
      const result = await helper(agent, input, ["verify", input.sha256]);
      if (result.exitCode === 10) throw permanentFailure("CHECKSUM_MISMATCH", `agent package rejected in the guest: ${result.stderr.trim()}`);
      if (result.exitCode !== 0) throw permanentFailure("AGENT_COMMAND_FAILED", `verify in the guest failed (${result.exitCode}): ${result.stderr.trim()}`);
    },

    /** Installs the version aside, arms the rollback watchdog, switches `current` and restarts the agent. */
    async installAgentPackage(input: UpgradeRef & { version: string; rollbackAfterSeconds: number }) {
      const result = await helper(agent, input, ["install", input.version, String(input.rollbackAfterSeconds)]);
      if (result.exitCode !== 0) throw permanentFailure("AGENT_COMMAND_FAILED", `install in the guest failed (${result.exitCode}): ${result.stderr.trim()}`);
    },

    /** Until the restarted agent answers and its supervisor reports the new version running. */
    async waitForAgentVersion(input: { vmId: string; version: string; timeoutMs: number }) {
      if (!(await waitForRunningVersion(agent, input.vmId, input.version, input.timeoutMs))) {
        throw permanentFailure("AGENT_NOT_CONNECTED", `the agent did not come back with version ${input.version} within ${input.timeoutMs} ms`);
      }
    },

    /** The new agent answers: the upgrade is kept (the watchdog stands down). */
    async commitAgentUpgrade(input: UpgradeRef) {
      const result = await helper(agent, input, ["commit"]);
      if (result.exitCode === 20) throw permanentFailure("AGENT_ROLLED_BACK", `the guest rolled the upgrade back before it was committed: ${result.stderr.trim()}`);
      if (result.exitCode !== 0) throw transientFailure("AGENT_COMMAND_FAILED", `commit in the guest failed (${result.exitCode}): ${result.stderr.trim()}`);
    },

    /**
     * Undo of the install: asks the guest to roll back whenever an agent answers (the new one, or
     * the old one still), until the previous version runs and answers. When no agent answers (the
     * new one never started), the guest's watchdog restores the previous version by itself.
     */
    async rollbackAgentUpgrade(input: UpgradeRef & { previousVersion: string; waitMs: number }) {
      const ctx = Context.current();
      const deadline = Date.now() + input.waitMs;
      let asked = false;
      while (Date.now() < deadline) {
        if (!asked) {
          // Fails while no agent answers, or when the staging (and the helper) is already gone.
          const result = await helper(agent, input, ["rollback"]).catch(() => null);
          if (result?.exitCode === 21) throw permanentFailure("CONFLICT", "the upgrade was already committed in the guest");
          asked = result?.exitCode === 0;
        }
        const seen = await answeringVersion(agent, input.vmId);
        ctx.heartbeat({ asked, seen });
        if (seen === input.previousVersion) return;
        await Promise.race([sleep(POLL_MS), ctx.cancelled]);
      }
      throw transientFailure("AGENT_NOT_CONNECTED", `the previous agent ${input.previousVersion} did not answer within ${input.waitMs} ms of the rollback`);
    },
  };
}
