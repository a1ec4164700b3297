import { expectPendingCleanup } from "./assertions";
import type { SweepScenario } from "./sweep";
import type { TestSystem } from "./system";
import { completed } from "./volumes";

/**
 * Sweep scenarios of the volume-making workflows, shared by every pool kind's suite. `cleanSlate`
 * checks the pool on its real backend holds exactly the `expected` volumes (files, RBD images,
 * LUN assignments) and rows, all READY.
 */
export interface VolumeSweepTarget {
  system: TestSystem;
  poolId: () => string;
  cleanSlate: (expected: string[]) => Promise<void>;
}

async function deleteVolume(system: TestSystem, volumeId: string): Promise<void> {
  await completed(system, await system.request("DELETE", `/v1/volumes/${volumeId}`));
}

/** A volume left in ERROR by a failed undo names it, keeps its references, and DELETE removes it. */
async function finishVolumeCleanup(system: TestSystem, volumeId: string, undoStep: string): Promise<void> {
  const volume = (await system.request("GET", `/v1/volumes/${volumeId}`)).body;
  expectPendingCleanup(volume, undoStep);
  expect(volume.cleanup.remains).toEqual([expect.objectContaining({ kind: "volume", volumeId, poolId: volume.poolId })]);
  await deleteVolume(system, volumeId);
}

export function createVolumeScenario({ system, poolId, cleanSlate }: VolumeSweepTarget, sizeGiB = 1): SweepScenario {
  let runs = 0;
  return {
    workflowType: "createVolume",
    start: async () => (await system.request("POST", "/v1/volumes", { name: `sweep-${++runs}`, poolId: poolId(), sizeGiB })).body.operationId,
    async afterSuccess(op) {
      await cleanSlate([op.target.id]);
      await deleteVolume(system, op.target.id);
      await cleanSlate([]);
    },
    expectCleanSlate: () => cleanSlate([]),
    finishCleanup: (op, undoStep) => finishVolumeCleanup(system, op.target.id, undoStep),
  };
}

export function cloneVolumeScenario({ system, cleanSlate }: VolumeSweepTarget, source: () => string, mode: "linked" | "full"): SweepScenario {
  let runs = 0;
  return {
    workflowType: "cloneVolume",
    start: async () => (await system.request("POST", `/v1/volumes/${source()}/clone`, { name: `clone-${++runs}`, mode })).body.operationId,
    async afterSuccess(op) {
      // (A linked RBD clone hangs off a hidden snapshot of its source until it is deleted.)
      expect((await system.request("GET", `/v1/volumes/${op.target.id}`)).body).toMatchObject({ state: "READY", cleanup: null });
      await deleteVolume(system, op.target.id);
      await cleanSlate([source()]);
    },
    expectCleanSlate: () => cleanSlate([source()]),
    finishCleanup: (op, undoStep) => finishVolumeCleanup(system, op.target.id, undoStep),
  };
}

/** deleteVolume recovers forward: a failed delete leaves the volume in ERROR (or as it was), and DELETE again finishes. */
export function deleteVolumeScenario({ system, poolId, cleanSlate }: VolumeSweepTarget): SweepScenario {
  let next = "";
  let runs = 0;
  return {
    workflowType: "deleteVolume",
    async prepare() {
      const res = await system.request("POST", "/v1/volumes", { name: `to-delete-${++runs}`, poolId: poolId(), sizeGiB: 1 });
      await completed(system, res);
      next = res.body.volumeId;
    },
    start: async () => (await system.request("DELETE", `/v1/volumes/${next}`)).body.operationId,
    afterSuccess: () => cleanSlate([]),
    async expectCleanSlate(op) {
      const volume = (await system.request("GET", `/v1/volumes/${op.target.id}`)).body;
      if (volume.state !== "READY") expectPendingCleanup(volume, op.steps.find((s: { state: string }) => s.state === "FAILED").name);
      await deleteVolume(system, op.target.id);
      await cleanSlate([]);
    },
  };
}
