/**
 * upgradeAgent — runbook (POST /v1/vms/:id/agent/upgrade, and one child per VM of a fleet upgrade)
 *   1. validate      the VM is RUNNING on a host
 *   2. inspect       the agent answers; the running package version; the target package in the
 *                    host's library. Same version: done, nothing changes. Older: refused
 *                    (AGENT_DOWNGRADE_REFUSED) unless allowDowngrade.
 *   3. push          our helper, the manifest's checksums and the package into the guest's staging
 *                    (guest-file-write in chunks, heartbeating bytes)           undo: remove the staging
 *   4. verify        the package's and every file's sha256, computed inside the guest
 *   5. install       the new version aside of the current one, the rollback watchdog armed, `current`
 *                    switched, the agent restarted                              undo: roll back, and
 *                    wait until the previous agent answers (the guest's watchdog does it alone when
 *                    the new agent never starts and the host cannot reach the guest)
 *   6. wait-agent    until the restarted agent answers and reports the new version
 *   7. commit        the watchdog stands down — the point of no return: nothing after it
 * Any failure or cancel before commit restores the previous version and proves it answers.
 */
import { ApplicationFailure } from "@temporalio/workflow";
import { compareAgentVersions } from "../common/agent-versions";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database, expectVmState } from "./database-activities";

export interface UpgradeAgentInput {
  operationId: string;
  vmId: string;
  version: string;
  allowDowngrade: boolean;
  timeouts: HostCallTimeouts & {
    /** How long the restarted agent has to answer with the new version. */
    agentStartMs: number;
  };
}

export interface UpgradeAgentResult {
  outcome: "upgraded" | "unchanged";
  from: string;
  to: string;
}

// Pushing a few MiB through the agent in 48 KiB chunks takes tens of seconds on a busy TCG guest.
const HOST_STEP = { startToCloseTimeout: "5m", heartbeatTimeout: "1m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };
const UNDO = { startToCloseTimeout: "10m", heartbeatTimeout: "1m", retry: { initialInterval: "2s", maximumInterval: "30s", maximumAttempts: 10 } };
/** The watchdog waits past the wait for the new agent, so only a host that is gone leaves it to fire. */
const WATCHDOG_MARGIN_MS = 30_000;

const STEPS = 7;

export async function upgradeAgent(input: UpgradeAgentInput): Promise<UpgradeAgentResult> {
  const { vmId, version } = input;
  const saga = new OperationSaga(input.operationId, STEPS);
  try {
    const vm = await saga.step("validate", async () => expectVmState(await database.loadVm(vmId), ["RUNNING"]));
    if (!vm.hostId) throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `VM ${vmId} is not placed on a host` });
    const host = hostActivities(vm.hostId, input.timeouts, HOST_STEP);
    const hostUndo = hostActivities(vm.hostId, input.timeouts, UNDO);
    const ref = { vmId, upgradeId: input.operationId };

    const found = await saga.step("inspect", () => host.inspectAgentUpgrade({ vmId, version }));
    const from = found.running.package!;
    const order = compareAgentVersions(version, from);
    if (order === 0) {
      await saga.commit();
      return { outcome: "unchanged", from, to: version };
    }
    if (order < 0 && !input.allowDowngrade) {
      throw ApplicationFailure.create({ type: "AGENT_DOWNGRADE_REFUSED", nonRetryable: true, message: `${version} is older than the running ${from}; ask with allowDowngrade to install it` });
    }
    await saga.step("push", () => host.pushAgentPackage({ ...ref, version }), () => hostUndo.removeAgentStaging(ref));
    await saga.step("verify", () => host.verifyAgentPackage({ ...ref, sha256: found.packageSha256 }));
    const rollbackAfterMs = input.timeouts.agentStartMs + WATCHDOG_MARGIN_MS;
    await saga.step(
      "install",
      () => host.installAgentPackage({ ...ref, version, rollbackAfterSeconds: Math.ceil(rollbackAfterMs / 1000) }),
      () => hostUndo.rollbackAgentUpgrade({ ...ref, previousVersion: from, waitMs: rollbackAfterMs + input.timeouts.agentStartMs }),
    );
    await saga.step("wait-agent", () => host.waitForAgentVersion({ vmId, version, timeoutMs: input.timeouts.agentStartMs }));
    await saga.step("commit", () => host.commitAgentUpgrade(ref));
    await saga.commit();
    return { outcome: "upgraded", from, to: version };
  } catch (err) {
    return saga.fail(err, async () => undefined);
  }
}
