import { permanentFailure } from "../../common/errors";
import type { DiskElement, FileEntry, PoolStatus, StorageBackend, VolumeInfo, VolumeSource } from "./backend";
import { createIscsiInitiator, type Lun } from "./iscsi-initiator";
import { ensureSecret, findSecret, removeSecret } from "./libvirt-secrets";

/**
 * iSCSI pool of pre-provisioned LUNs: what an oVirt user knows as "direct LUN" disks and a
 * vCenter user as raw device mappings. The storage admin creates LUNs on the array; each volume is
 * one whole LUN, used raw by the guest through QEMU's userspace initiator (libiscsi). The kernel
 * initiator (and so LVM over LUNs, as oVirt block domains do) is not available on these hosts.
 *
 * Design:
 * - The control plane owns the volume → LUN map (one assignment row per LUN, unique per pool). It
 *   picks a free LUN of the right size from listFiles("") before the create step, as every other id
 *   is chosen before side effects, and passes the map in `lunAssignments`. A claim label written on
 *   the LUN itself was rejected: two hosts claiming at once would need an atomic compare-and-write,
 *   and the label would live inside the guest's disk.
 * - LUNs handed to the pool are expected blank. deleteVolume zeroes the LUN (always-on
 *   "wipe after delete"), so a released LUN holds nothing of its last tenant, an aborted copy leaves
 *   nothing behind, and createVolume of an empty volume need not write anything.
 * - The initiator cannot share blocks between LUNs: clones and base images are full copies (the
 *   VolumeInfo has no backingVolumeId, which tells the caller so). A copy cannot be made atomic, so
 *   a retried create or copy copies again.
 * - A LUN's size is fixed by the array: resize succeeds only up to the LUN's capacity (grow the LUN
 *   on the array first), and a volume's size is its LUN's capacity.
 * - No snapshots (NOT_SUPPORTED). qcow2 on the LUN was rejected: the guest's disk would no longer be
 *   the array's raw LUN that other tools and array-side snapshots/replication see, and qcow2
 *   snapshots inside a fixed-size LUN pause the guest with ENOSPC once they fill it. Snapshot such
 *   LUNs on the array.
 */

export interface IscsiConfig {
  /** "host:port" */
  portal: string;
  /** The target's IQN. */
  target: string;
  chap?: {
    username: string;
    /** Usage name of the libvirt secret (type iscsi) that initPool fills with the password. */
    secretUsage: string;
    password: string;
  };
  libvirtUri: string;
  /** volumeId → LUN number, kept by the control plane (see the design notes above). */
  lunAssignments?: Record<string, number>;
}

const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const PORTAL = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;
const IQN = /^(?:iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(?::[A-Za-z0-9.:_-]+)?|eui\.[0-9A-Fa-f]{16})$/;
/** CHAP user names and secret usage names end up in URLs and qemu option strings. */
const PLAIN_NAME = /^[A-Za-z0-9._:-]{1,128}$/;
/** SAM flat addressing: 14 bits. */
const MAX_LUN = 16383;
const LUN_FILE = /^lun-(\d+)$/;

function invalid(message: string) {
  return permanentFailure("VALIDATION_FAILED", message);
}

function notSupported(what: string) {
  return permanentFailure("NOT_SUPPORTED", `${what}: iSCSI LUNs have no snapshots from the initiator side; snapshot the LUN on the array`);
}

function checkVolumeId(volumeId: string): void {
  if (!VOLUME_ID.test(volumeId)) throw invalid(`invalid volume id ${JSON.stringify(volumeId)}`);
}

function checkConfig(config: IscsiConfig): void {
  if (!PORTAL.test(config.portal)) throw invalid(`portal must be "host:port": ${JSON.stringify(config.portal)}`);
  if (!IQN.test(config.target)) throw invalid(`invalid target IQN ${JSON.stringify(config.target)}`);
  if (config.chap && !(PLAIN_NAME.test(config.chap.username) && PLAIN_NAME.test(config.chap.secretUsage))) {
    throw invalid("CHAP user and secret usage may hold only letters, digits and . _ : -");
  }
  if (config.chap && config.chap.password.length === 0) throw invalid("the CHAP password is empty");
  const luns = Object.entries(config.lunAssignments ?? {});
  for (const [volumeId, lun] of luns) {
    checkVolumeId(volumeId);
    if (!Number.isInteger(lun) || lun < 0 || lun > MAX_LUN) throw invalid(`volume ${volumeId}: invalid LUN ${lun}`);
  }
  if (new Set(luns.map(([, lun]) => lun)).size !== luns.length) throw invalid("a LUN is assigned to more than one volume");
}

export function createIscsiBackend(config: IscsiConfig): StorageBackend {
  checkConfig(config);
  const initiator = createIscsiInitiator(config);
  const assignments = new Map(Object.entries(config.lunAssignments ?? {}));
  const location = (lun: number) => `iscsi://${config.portal}/${config.target}/${lun}`;

  function assignedLun(volumeId: string): number | undefined {
    checkVolumeId(volumeId);
    return assignments.get(volumeId);
  }

  /** The volume's LUN and capacity, or null when it has no LUN or the LUN is gone from the target. */
  async function findVolume(volumeId: string): Promise<Lun | null> {
    const lun = assignedLun(volumeId);
    if (lun === undefined) return null;
    const sizeBytes = await initiator.lunSize(lun);
    return sizeBytes === null ? null : { lun, sizeBytes };
  }

  async function requireVolume(volumeId: string): Promise<Lun> {
    const found = await findVolume(volumeId);
    if (!found) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${volumeId} has no LUN on ${config.target}`);
    return found;
  }

  function toVolumeInfo(volumeId: string, { lun, sizeBytes }: Lun): VolumeInfo {
    // A LUN is fully provisioned as far as the initiator can tell.
    return { volumeId, location: location(lun), format: "raw", sizeBytes, allocatedBytes: sizeBytes };
  }

  /** Full copy of `from` onto `to`; a failed or aborted copy zeroes `to` again. */
  async function copyOnto(from: Lun, to: Lun, onPercent: (percent: number) => void, signal?: AbortSignal): Promise<void> {
    if (from.sizeBytes > to.sizeBytes) {
      const why = `LUN ${to.lun} (${to.sizeBytes} B) cannot hold LUN ${from.lun} (${from.sizeBytes} B)`;
      throw permanentFailure("INSUFFICIENT_CAPACITY", why);
    }
    try {
      await initiator.copyLun(from.lun, to.lun, onPercent, signal);
    } catch (err) {
      await initiator.wipeLun(to.lun, to.sizeBytes);
      throw err;
    }
  }

  /** The LUN a create copies from: another volume's, or a base image LUN named "lun-<n>". */
  async function copySource(volumeId: string, source: Exclude<VolumeSource, { kind: "empty" }>): Promise<Lun> {
    if (source.kind === "clone") {
      if (source.snapshot !== undefined) throw notSupported(`cloning volume ${source.volumeId} from snapshot ${source.snapshot}`);
      if (source.volumeId === volumeId) throw invalid(`volume ${volumeId} cannot be created from itself`);
      return requireVolume(source.volumeId);
    }
    const lun = Number(LUN_FILE.exec(source.path)?.[1] ?? Number.NaN);
    if (!Number.isInteger(lun) || lun > MAX_LUN) {
      throw permanentFailure("INVALID_PATH", `base image ${JSON.stringify(source.path)} is not a LUN name (lun-<n>)`);
    }
    const sizeBytes = await initiator.lunSize(lun);
    if (sizeBytes === null) throw permanentFailure("NOT_FOUND", `target ${config.target} has no LUN ${lun}`);
    return { lun, sizeBytes };
  }

  async function iscsiStatus(): Promise<PoolStatus> {
    const luns = await initiator.listLuns();
    const byLun = new Map(luns.map((l) => [l.lun, l]));
    const assigned = [...assignments.values()];
    const missing = assigned.filter((lun) => !byLun.has(lun));
    const sum = (list: Lun[]) => list.reduce((total, l) => total + l.sizeBytes, 0);
    return {
      health: missing.length > 0 ? "degraded" : "healthy",
      capacityBytes: sum(luns),
      freeBytes: sum(luns.filter((l) => !assigned.includes(l.lun))),
      volumeCount: assigned.length - missing.length,
      ...(missing.length > 0 ? { message: `assigned LUNs missing from ${config.target}: ${missing.join(", ")}` } : {}),
    };
  }

  return {
    kind: "iscsi",

    async initPool() {
      if (config.chap) {
        await ensureSecret(
          { libvirtUri: config.libvirtUri, usage: { type: "iscsi", target: config.chap.secretUsage } },
          config.chap.password,
          "plain",
        );
      }
      // Log in once, so that a wrong portal, target or password fails here and not at VM start.
      await initiator.listLuns();
    },

    async teardownPool() {
      if (!config.chap) return;
      const uuid = await findSecret(config.libvirtUri, { type: "iscsi", target: config.chap.secretUsage });
      if (uuid) await removeSecret(config.libvirtUri, uuid);
    },

    async status() {
      try {
        return await iscsiStatus();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        return { health: "error", capacityBytes: 0, freeBytes: 0, volumeCount: 0, message };
      }
    },

    async createVolume(spec) {
      const lun = assignedLun(spec.volumeId);
      if (!Number.isSafeInteger(spec.sizeBytes) || spec.sizeBytes <= 0) throw invalid(`invalid size ${spec.sizeBytes}`);
      if (lun === undefined) {
        throw invalid(`volume ${spec.volumeId} has no LUN assigned; assign a free LUN of ${config.target} first`);
      }
      const sizeBytes = await initiator.lunSize(lun);
      if (sizeBytes === null) throw permanentFailure("NOT_FOUND", `target ${config.target} has no LUN ${lun}`);
      if (sizeBytes < spec.sizeBytes) {
        const why = `LUN ${lun} holds ${sizeBytes} B, volume ${spec.volumeId} needs ${spec.sizeBytes} B`;
        throw permanentFailure("INSUFFICIENT_CAPACITY", why);
      }
      const target = { lun, sizeBytes };
      if (spec.source.kind !== "empty") {
        const from = await copySource(spec.volumeId, spec.source);
        if (from.lun === lun) throw invalid(`volume ${spec.volumeId} cannot be created from its own LUN`);
        await copyOnto(from, target, () => undefined);
      }
      return toVolumeInfo(spec.volumeId, target);
    },

    async volumeInfo(volumeId) {
      const found = await findVolume(volumeId);
      return found ? toVolumeInfo(volumeId, found) : null;
    },

    async deleteVolume(volumeId) {
      const found = await findVolume(volumeId);
      if (found) await initiator.wipeLun(found.lun, found.sizeBytes);
    },

    async resizeVolume(volumeId, sizeBytes) {
      const { lun, sizeBytes: current } = await requireVolume(volumeId);
      if (sizeBytes < current) throw invalid(`volume ${volumeId} is ${current} B; shrinking to ${sizeBytes} B is refused`);
      if (sizeBytes > current) {
        throw permanentFailure("NOT_SUPPORTED", `LUN ${lun} is ${current} B: grow it on the array to ${sizeBytes} B, then resize again`);
      }
    },

    async copyVolume(sourceVolumeId, targetVolumeId, onProgress, signal) {
      if (sourceVolumeId === targetVolumeId) throw invalid(`volume ${sourceVolumeId} cannot be copied onto itself`);
      const from = await requireVolume(sourceVolumeId);
      const to = await requireVolume(targetVolumeId);
      onProgress(0, from.sizeBytes);
      await copyOnto(from, to, (percent) => onProgress(Math.round((from.sizeBytes * percent) / 100), from.sizeBytes), signal);
      onProgress(from.sizeBytes, from.sizeBytes);
      return toVolumeInfo(targetVolumeId, to);
    },

    async createSnapshot(volumeId, name) {
      throw notSupported(`snapshot ${name} of volume ${volumeId}`);
    },

    async listSnapshots(volumeId) {
      await requireVolume(volumeId);
      return [];
    },

    async deleteSnapshot(volumeId, name) {
      throw notSupported(`deleting snapshot ${name} of volume ${volumeId}`);
    },

    async revertSnapshot(volumeId, name) {
      throw notSupported(`reverting volume ${volumeId} to snapshot ${name}`);
    },

    async listFiles(relativePath): Promise<FileEntry[]> {
      if (relativePath !== "") {
        throw permanentFailure("INVALID_PATH", `an iSCSI target has no directories: ${JSON.stringify(relativePath)}`);
      }
      // The LUN's modification time is not something SCSI reports.
      return (await initiator.listLuns()).map((l) => ({ name: `lun-${l.lun}`, type: "raw", sizeBytes: l.sizeBytes, modifiedAt: "" }));
    },

    async diskElement(volumeId): Promise<DiskElement> {
      const { lun } = await requireVolume(volumeId);
      const colon = config.portal.lastIndexOf(":");
      const host = { "@_name": config.portal.slice(0, colon).replace(/^\[|\]$/g, ""), "@_port": config.portal.slice(colon + 1) };
      const auth = config.chap
        ? { auth: { "@_username": config.chap.username, secret: { "@_type": "iscsi", "@_usage": config.chap.secretUsage } } }
        : {};
      return {
        "@_type": "network",
        "@_device": "disk",
        driver: { "@_name": "qemu", "@_type": "raw" },
        source: { "@_protocol": "iscsi", "@_name": `${config.target}/${lun}`, host, ...auth },
      };
    },

    withLunAssignments(more) {
      return createIscsiBackend({ ...config, lunAssignments: { ...config.lunAssignments, ...more } });
    },
  };
}
