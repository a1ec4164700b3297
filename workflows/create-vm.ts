/**
 * createVm — runbook
 *   1. validate       load the VM row (it must still be CREATING) and its boot media
 *   2. place          pick a host with the CPU, memory and pool; reserve them   undo: release (kept
 *                     while anything is left on the host: the cleanup finds it there)
 *   3. create-disk    qcow2 boot disk on the host's pool (empty or on an image)  undo: delete disk
 *      create-data-disk <dev>  only for a VM made with data disks: one empty volume per disk, on
 *                     its own pool, attached below at <dev> (sda, sdb...)       undo: delete it
 *      build-seed-iso only for a VM with access settings: its cloud-init NoCloud seed ISO   undo: remove it
 *      create-ports   only for a VM with NICs: their OVN logical switch ports (addresses chosen by the
 *                     API), port security on, requested-chassis = the host, in one transaction   undo: delete them
 *   4. define-domain  domain XML (real XML builder) defined in libvirt           undo: undefine
 *                     with the seed ISO and an installer ISO (booted first) as CD-ROMs, and each NIC
 *                     on br-int (openvswitch virtualport, interfaceid = the port id)
 *   5. start-domain   start the domain                                          undo: force stop
 *   6. wait-running   until libvirt reports it running
 *   ── commit ──      the point of no return: the VM runs; no undo runs after this, whatever happens
 *   7. record         VM RUNNING, volumes READY — retried until it succeeds, never compensated
 * On any failure or cancel the undos run in reverse and the VM ends FAILED, holding nothing. An undo
 * aimed at a host that is down is retried until the undo deadline; one that still fails leaves the
 * VM in ERROR on its host, with `cleanup` naming what is left (domain, disks, seed ISO), every
 * reference kept: a repeated DELETE removes it.
 * Data disks are volumes in their own right: deleteVm keeps them (detached, READY), as OpenStack
 * keeps a server's volumes; DELETE /v1/volumes/:id removes one.
 */
import { upsertSearchAttributes } from "@temporalio/workflow";
import { HOST_ID } from "../common/search-attributes";
import { cleanupAfterUndos } from "../common/cleanup";
import { OperationSaga } from "./operation-saga";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { database, expectVmState } from "./database-activities";
import { lunAssignmentsOf } from "./volume-checks";
import { northbound, northboundUndo } from "./network-activities";

export interface CreateVmInput {
  operationId: string;
  vmId: string;
  /**
   * The VM has access settings, so the optional build-seed-iso step runs: the progress counts it
   * from the first step on, before validate has read them (the API wrote both in one transaction).
   */
  buildsSeedIso: boolean;
  /** The VM has NICs, so the optional create-ports step runs (counted in the progress from the start). */
  createsPorts?: boolean;
  timeouts: HostCallTimeouts;
}

// Disk creation and libvirt calls take well under a second; two minutes covers a loaded host.
const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 3 } };
// Waiting for "running" polls; like every host call it heartbeats (HOST_HEARTBEAT_TIMEOUT).
const WAIT_STEP = { startToCloseTimeout: "2m", retry: { maximumAttempts: 3 } };
// Undos must not give up quickly: they are what keeps the host clean.
const UNDO = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 } };

const STEPS = 7;

export async function createVm(input: CreateVmInput): Promise<void> {
  const { vmId } = input;
  const saga = new OperationSaga(input.operationId, STEPS + (input.buildsSeedIso ? 1 : 0) + (input.createsPorts ? 1 : 0), input.timeouts);
  try {
    const { vm, media, nics } = await saga.step("validate", async () => ({
      vm: expectVmState(await database.loadVm(vmId), ["CREATING"]),
      media: await database.loadVmBootMedia(vmId),
      nics: await database.loadVmPorts(vmId),
    }));
    const placement = await saga.step(
      "place",
      () => database.placeVm(vmId),
      // A failed undo left something on the host: the placement stays with it, for the cleanup.
      (failed) => (failed.length > 0 ? Promise.resolve() : database.releaseVm(vmId)),
    );
    upsertSearchAttributes([{ key: HOST_ID, value: placement.hostId }]);

    const host = hostActivities(placement.hostId, input.timeouts, HOST_STEP);
    const hostUndo = hostActivities(placement.hostId, input.timeouts, UNDO);
    const hostWait = hostActivities(placement.hostId, input.timeouts, WAIT_STEP);
    const disk = { poolId: placement.poolId, volumeId: vm.bootVolumeId };
    const onHost = placement.hostId;

    await saga.step(
      "create-disk",
      () => host.createDisk({ ...disk, sizeBytes: vm.diskSizeBytes, baseImage: vm.baseImage }),
      () => hostUndo.deleteDisk(disk),
      { kind: "volume", hostId: onHost, ...disk },
    );
    for (const dataDisk of vm.dataDisks) {
      const ref = { poolId: dataDisk.poolId, volumeId: dataDisk.volumeId, ...lunAssignmentsOf({ id: dataDisk.volumeId, lun: dataDisk.lun }) };
      await saga.step(
        `create-data-disk ${dataDisk.targetDev}`,
        () => host.createVolume({ ...ref, sizeBytes: dataDisk.sizeBytes, source: { kind: "empty" } }),
        () => hostUndo.deleteVolume(ref),
        { kind: "volume", hostId: onHost, poolId: dataDisk.poolId, volumeId: dataDisk.volumeId, ...(dataDisk.lun !== null ? { lun: dataDisk.lun } : {}) },
      );
    }
    const cdroms = media.installIso ? [media.installIso] : [];
    const cloudInit = media.cloudInit;
    if (cloudInit) {
      const seed = { vmId, poolId: placement.poolId };
      const built = await saga.step("build-seed-iso", () => host.buildVmSeedIso({ ...seed, ...cloudInit }), () => hostUndo.removeVmSeedIso(seed), {
        kind: "seed-iso",
        hostId: onHost,
        ...seed,
      });
      cdroms.push({ poolId: placement.poolId, path: built.path });
    }
    if (nics.length > 0) {
      const portIds = nics.map((p) => p.id);
      await saga.step(
        "create-ports",
        () => northbound.nbCreatePorts(nics.map((p) => ({ ...p, requestedChassis: placement.hostId }))),
        () => northboundUndo.nbDeletePorts(portIds),
      );
    }
    await saga.step(
      "define-domain",
      () =>
        host.defineDomain({
          vmId,
          displayName: vm.name,
          vcpus: vm.vcpus,
          memoryMiB: vm.memoryMiB,
          ...disk,
          bootVolumeId: vm.bootVolumeId,
          ...(vm.dataDisks.length > 0 ? { dataDisks: vm.dataDisks.map((d) => ({ poolId: d.poolId, volumeId: d.volumeId, targetDev: d.targetDev, ...lunAssignmentsOf({ id: d.volumeId, lun: d.lun }) })) } : {}),
          ...(cdroms.length > 0 ? { cdroms, bootFromCdrom: media.installIso !== null } : {}),
          ...(nics.length > 0 ? { nics: nics.map((p) => ({ portId: p.id, mac: p.mac })) } : {}),
        }),
      () => hostUndo.undefineDomain(vmId),
      { kind: "domain", hostId: onHost, vmId },
    );
    await saga.step("start-domain", () => host.startDomain(vmId), () => hostUndo.forceStopDomain(vmId), { kind: "domain", hostId: onHost, vmId });
    await saga.step("wait-running", () => hostWait.waitForDomainRunning(vmId));
    await saga.commit("record", () => database.vmCreated({ vmId }));
  } catch (err) {
    await saga.fail(err, (failure, undoFailures) =>
      database.vmCreateFailed({ vmId, errorCode: failure.code, errorMessage: failure.message, cleanup: cleanupAfterUndos(input.operationId, undoFailures) }),
    );
  }
}
