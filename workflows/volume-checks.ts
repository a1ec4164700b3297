import { ApplicationFailure } from "@temporalio/workflow";
import type { VolumeSpec } from "../activities/database/volumes";
import type { ErrorCode } from "../common/errors";
import { database } from "./database-activities";

function refuse(code: ErrorCode, message: string): never {
  throw ApplicationFailure.create({ type: code, nonRetryable: true, message });
}

export interface VolumeExpectations {
  states: VolumeSpec["state"][];
  /** The operation changes the volume's data or needs it free of any guest. */
  detached?: boolean;
  /** The operation changes data that linked clones read. */
  noClones?: boolean;
}

/** Fails the validate step unless the volume may undergo the operation now (a stale request must not act). */
export function expectVolume(volume: VolumeSpec, expected: VolumeExpectations): VolumeSpec {
  if (!expected.states.includes(volume.state)) refuse("CONFLICT", `volume ${volume.id} is ${volume.state}, expected ${expected.states.join(" or ")}`);
  if (expected.detached && volume.vmId) refuse("VOLUME_IN_USE", `volume ${volume.id} is attached to VM ${volume.vmId}; detach it first`);
  if (expected.noClones && volume.cloneCount > 0) {
    refuse("VOLUME_IN_USE", `volume ${volume.id} is the base of ${volume.cloneCount} linked clones; its data must not change`);
  }
  return volume;
}

/** What a host call on these volumes passes of the control plane's volume → LUN map (iSCSI pools). */
export function lunAssignmentsOf(...volumes: Pick<VolumeSpec, "id" | "lun">[]): { lunAssignments?: Record<string, number> } {
  const assigned = volumes.filter((v) => v.lun !== null);
  return assigned.length > 0 ? { lunAssignments: Object.fromEntries(assigned.map((v) => [v.id, v.lun!])) } : {};
}

/**
 * The host a volume operation runs on: the one holding it (host-local pool), else the host of the
 * VM it is attached to (live changes), else any host with a fresh healthy report on the pool.
 */
export function hostForVolume(volume: VolumeSpec): Promise<string> {
  return database.pickPoolHost({ poolId: volume.poolId, preferred: volume.hostId ?? volume.vmHostId });
}
