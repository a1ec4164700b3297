import { rm } from "node:fs/promises";
import path from "node:path";
import { permanentFailure } from "../../common/errors";
import type {
  CopyProgress,
  DiskElement,
  FileEntry,
  PoolHealth,
  PoolStatus,
  SnapshotInfo,
  StorageBackend,
  VolumeInfo,
  VolumeSpec,
} from "./backend";
import { createCephCli, defaultConfPath } from "./ceph-cli";
import { ensureSecret, removeSecret } from "./libvirt-secrets";
import { runWithProgress } from "./progress-command";

/**
 * Ceph RBD pool: each volume is an RBD image named after its volume id, reached through librbd only
 * (rbd/ceph CLIs, qemu's rbd driver): no krbd, no device-mapper.
 *
 * - Copy-on-write clones are snapshot → protect → clone. A clone of a volume (or a CoW base image)
 *   gets its own hidden snapshot `qx-clone-<clone id>` on the source; deleting the clone removes that
 *   snapshot once it has no children, so the source stays deletable. Deleting a volume whose
 *   snapshots still have clones fails with VOLUME_IN_USE (flattening them is a separate decision).
 * - Full copies (copyVolume, a non-CoW base image) are `rbd cp` (its progress reports feed the
 *   heartbeats) of a hidden snapshot `qx-copy-<target>` of the source, so a running guest's disk is
 *   copied crash-consistently, and its reader holds no lock and leaves no watch on the source when
 *   killed. The copy goes into `<target>~copying` (no volume id contains "~") and is renamed to the
 *   target when complete: an image under a volume's name is always whole, and an abort or a retry
 *   just removes the partial. A killed `rbd cp` leaves its watch and lock on the partial for ~30 s,
 *   which blocks `rbd rm`; only the copy opens a partial, so its watchers are blocklisted (what
 *   librbd does to break a dead client's lock; `profile rbd` allows it) and the partial goes at once.
 * - deleteVolume removes the volume's snapshots too (hidden ones a crash left behind included).
 * - The client key is read from the keyring file only to hand it to libvirt (via a private temp file).
 */

export interface CephRbdConfig {
  pool: string;
  /** "host:port", v1 (6789) or v2 (3300) monitor addresses. */
  monitors: string[];
  user: string;
  /** Path of the client keyring file. */
  keyring: string;
  /** uuid of this pool's libvirt secret (type ceph), which initPool fills with the client key. */
  secretUuid: string;
  libvirtUri: string;
  /** Where the client conf (monitors, mount timeout) is written for the CLIs and libvirt. */
  confPath?: string;
}

const VOLUME_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** User snapshot names; the "qx-" prefix is kept for the backend's own snapshots. */
const SNAPSHOT_NAME = /^(?!qx-)[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const HIDDEN_SNAPSHOT_PREFIX = "qx-";
const CLONE_SNAPSHOT_PREFIX = "qx-clone-";
const COPY_SNAPSHOT_PREFIX = "qx-copy-";
const PARTIAL_SUFFIX = "~copying";
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MONITOR = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LIST_CONCURRENCY = 8;
/** A blocklisted client address is unique to one dead process; an hour outlives any watch. */
const BLOCKLIST_SECONDS = 3600;

// errno exit codes of the rbd CLI
const ENOENT = 2;
const EBUSY = 16;
const EEXIST = 17;

interface RbdImageInfo {
  name: string;
  size: number;
  modify_timestamp?: string;
  parent?: { pool: string; pool_namespace: string; image: string; snapshot: string };
}

interface RbdSnapshot {
  name: string;
  size: number;
  protected: "true" | "false";
  timestamp: string;
}

function invalid(message: string) {
  return permanentFailure("VALIDATION_FAILED", message);
}

function checkVolumeId(volumeId: string): void {
  if (!VOLUME_ID.test(volumeId)) throw invalid(`invalid volume id ${JSON.stringify(volumeId)}`);
}

function checkSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) throw invalid(`invalid size ${sizeBytes}`);
}

/** rbd prints "Sat Nov 21 22:16:18 2026" (the host's local time). */
function isoTime(rbdTimestamp: string | undefined): string | undefined {
  const date = rbdTimestamp ? new Date(rbdTimestamp) : undefined;
  return date && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
}

function checkConfig(config: CephRbdConfig): void {
  if (!NAME.test(config.pool)) throw invalid(`invalid pool name ${JSON.stringify(config.pool)}`);
  if (!NAME.test(config.user)) throw invalid(`invalid Ceph user ${JSON.stringify(config.user)}`);
  if (config.monitors.length === 0 || !config.monitors.every((m) => MONITOR.test(m))) {
    throw invalid(`monitors must be "host:port": ${JSON.stringify(config.monitors)}`);
  }
  if (!UUID.test(config.secretUuid)) throw invalid(`invalid secret uuid ${JSON.stringify(config.secretUuid)}`);
  for (const p of [config.keyring, config.confPath].filter((x): x is string => x !== undefined)) {
    if (!path.isAbsolute(p)) throw invalid(`path ${JSON.stringify(p)} must be absolute`);
  }
}

export function createCephRbdBackend(config: CephRbdConfig): StorageBackend {
  checkConfig(config);
  const confPath = config.confPath ?? defaultConfPath(config.pool, config);
  const cli = createCephCli(config, confPath);
  const spec = (image: string) => `${config.pool}/${image}`;

  async function imageInfo(image: string): Promise<RbdImageInfo | null> {
    const outcome = await cli.attempt("rbd", ["info", "--format", "json", spec(image)]);
    if (outcome.ok) return JSON.parse(outcome.stdout) as RbdImageInfo;
    if (outcome.exitCode === ENOENT) return null;
    throw permanentFailure("STORAGE_ERROR", outcome.message);
  }

  async function requireImage(volumeId: string): Promise<RbdImageInfo> {
    const info = await imageInfo(volumeId);
    if (!info) throw permanentFailure("VOLUME_NOT_FOUND", `volume ${volumeId} does not exist in pool ${config.pool}`);
    return info;
  }

  async function snapshots(image: string): Promise<RbdSnapshot[]> {
    return JSON.parse(await cli.run("rbd", ["snap", "ls", "--format", "json", spec(image)])) as RbdSnapshot[];
  }

  async function children(image: string, snapshot: string): Promise<string[]> {
    const out = await cli.run("rbd", ["children", "--format", "json", `${spec(image)}@${snapshot}`]);
    return (JSON.parse(out) as { pool: string; image: string }[]).map((c) => `${c.pool}/${c.image}`);
  }

  async function refuseIfOpen(volumeId: string, what: string): Promise<void> {
    const status = JSON.parse(await cli.run("rbd", ["status", "--format", "json", spec(volumeId)])) as { watchers: unknown[] };
    if (status.watchers.length > 0) throw permanentFailure("VOLUME_IN_USE", `cannot ${what} volume ${volumeId}: a guest has it open`);
  }

  /** Removes an image; "already gone" is success, an image a guest has open is VOLUME_IN_USE. */
  async function removeImage(image: string): Promise<void> {
    const outcome = await cli.attempt("rbd", ["rm", "--no-progress", spec(image)]);
    if (outcome.ok || outcome.exitCode === ENOENT) return;
    if (outcome.exitCode === EBUSY) throw permanentFailure("VOLUME_IN_USE", `volume ${image} is open: ${outcome.message}`);
    throw permanentFailure("STORAGE_ERROR", outcome.message);
  }

  /** Removes a `~copying` partial, first evicting the dead copier that may still watch it. */
  async function removePartial(partial: string): Promise<void> {
    const outcome = await cli.attempt("rbd", ["status", "--format", "json", spec(partial)]);
    if (!outcome.ok) {
      if (outcome.exitCode === ENOENT) return;
      throw permanentFailure("STORAGE_ERROR", outcome.message);
    }
    const { watchers } = JSON.parse(outcome.stdout) as { watchers: { address: string }[] };
    for (const w of watchers) await cli.run("ceph", ["osd", "blocklist", "add", w.address, String(BLOCKLIST_SECONDS)]);
    await removeImage(partial);
  }

  async function ensureSnapshot(image: string, snapshot: string): Promise<void> {
    const outcome = await cli.attempt("rbd", ["snap", "create", "--no-progress", `${spec(image)}@${snapshot}`]);
    if (!outcome.ok && outcome.exitCode !== EEXIST) throw permanentFailure("STORAGE_ERROR", outcome.message);
  }

  async function ensureProtected(image: string, snapshot: string): Promise<void> {
    const snap = (await snapshots(image)).find((s) => s.name === snapshot);
    if (!snap) throw permanentFailure("NOT_FOUND", `snapshot ${snapshot} of volume ${image} does not exist`);
    if (snap.protected === "true") return;
    const outcome = await cli.attempt("rbd", ["snap", "protect", `${spec(image)}@${snapshot}`]);
    // EBUSY: protected meanwhile by a concurrent clone of the same snapshot.
    if (!outcome.ok && outcome.exitCode !== EBUSY) throw permanentFailure("STORAGE_ERROR", outcome.message);
  }

  /** Unprotects and removes a snapshot unless clones still hang off it. Success when already gone. */
  async function removeSnapshot(image: string, snap: RbdSnapshot): Promise<void> {
    const at = `${spec(image)}@${snap.name}`;
    if (snap.protected === "true") {
      const clones = await children(image, snap.name);
      if (clones.length > 0) throw permanentFailure("VOLUME_IN_USE", `snapshot ${at} has clones: ${clones.join(", ")}`);
      const outcome = await cli.attempt("rbd", ["snap", "unprotect", at]);
      if (!outcome.ok && outcome.exitCode !== ENOENT) throw permanentFailure("STORAGE_ERROR", outcome.message);
    }
    const outcome = await cli.attempt("rbd", ["snap", "rm", "--no-progress", at]);
    if (!outcome.ok && outcome.exitCode !== ENOENT) throw permanentFailure("STORAGE_ERROR", outcome.message);
  }

  /** Removes a hidden clone snapshot once no clone uses it any more; success when already gone. */
  async function releaseCloneSnapshot(image: string, snapshot: string): Promise<void> {
    if (!(await imageInfo(image))) return;
    const snap = (await snapshots(image)).find((s) => s.name === snapshot);
    if (snap && (await children(image, snapshot)).length === 0) await removeSnapshot(image, snap);
  }

  async function grow(image: string, current: number, sizeBytes: number): Promise<void> {
    if (sizeBytes > current) await cli.run("rbd", ["resize", "--no-progress", "--size", `${sizeBytes}B`, spec(image)]);
  }

  async function toVolumeInfo(volumeId: string, info: RbdImageInfo): Promise<VolumeInfo> {
    // One entry for the image and one per snapshot: together, what the volume occupies.
    const du = JSON.parse(await cli.run("rbd", ["du", "--format", "json", spec(volumeId)])) as { images: { used_size: number }[] };
    const parent = info.parent;
    return {
      volumeId,
      location: `rbd:${spec(volumeId)}`,
      format: "raw",
      sizeBytes: info.size,
      allocatedBytes: du.images.reduce((sum, entry) => sum + entry.used_size, 0),
      ...(parent && parent.pool === config.pool && parent.pool_namespace === "" ? { backingVolumeId: parent.image } : {}),
    };
  }

  /**
   * Full copy of `source` (as of now) into `target`, which must not exist, through a fresh hidden
   * snapshot and `<target>~copying`. What a crashed attempt left is replaced; an abort or a failure
   * removes the partial and the snapshot.
   */
  async function fullCopy(source: RbdImageInfo, target: string, onProgress: CopyProgress, signal?: AbortSignal): Promise<void> {
    const partial = `${target}${PARTIAL_SUFFIX}`;
    const snapshot = `${COPY_SNAPSHOT_PREFIX}${target}`;
    const dropSnapshot = async () => {
      const snap = (await snapshots(source.name)).find((s) => s.name === snapshot);
      if (snap) await removeSnapshot(source.name, snap);
    };
    await removePartial(partial);
    await dropSnapshot();
    await ensureSnapshot(source.name, snapshot);
    try {
      onProgress(0, source.size);
      await runWithProgress({
        command: "rbd",
        args: await cli.argv("rbd", ["cp", `${spec(source.name)}@${snapshot}`, spec(partial)]),
        progressOn: "stderr",
        onPercent: (percent) => onProgress(Math.round((source.size * percent) / 100), source.size),
        signal,
        errorCode: "STORAGE_ERROR",
        redact: [],
      });
      await cli.run("rbd", ["rename", spec(partial), spec(target)]);
    } catch (err) {
      await removePartial(partial);
      throw err;
    } finally {
      await dropSnapshot();
    }
  }

  /** Makes `target` a CoW child of `source@snapshot`, creating the hidden clone snapshot if asked. */
  async function cowClone(source: string, snapshot: string, target: string): Promise<void> {
    if (snapshot.startsWith(CLONE_SNAPSHOT_PREFIX)) await ensureSnapshot(source, snapshot);
    try {
      await ensureProtected(source, snapshot);
      const outcome = await cli.attempt("rbd", ["clone", `${spec(source)}@${snapshot}`, spec(target)]);
      if (!outcome.ok && outcome.exitCode !== EEXIST) throw permanentFailure("STORAGE_ERROR", outcome.message);
    } catch (err) {
      // Leave no hidden snapshot behind when the clone did not happen. Best effort, and the clone's
      // failure is what the caller must see: a leftover childless hidden snapshot is removed by
      // deleteVolume(source) anyway and never listed.
      if (snapshot.startsWith(CLONE_SNAPSHOT_PREFIX)) await releaseCloneSnapshot(source, snapshot).catch(() => undefined);
      throw err;
    }
  }

  /**
   * How to make the volume: from nothing, by full copy of `copyFrom`, or as a CoW child of `parent`.
   * Checks the source exists and fits in the requested size before anything is created.
   */
  async function plan(volume: VolumeSpec): Promise<{ copyFrom?: RbdImageInfo; parent?: { image: string; snapshot: string } }> {
    const src = volume.source;
    if (src.kind === "empty") return {};
    const sourceId = src.kind === "clone" ? src.volumeId : src.path;
    if (src.kind === "image" && !VOLUME_ID.test(sourceId)) {
      throw permanentFailure("INVALID_PATH", `base image ${JSON.stringify(sourceId)} is not an image name of pool ${config.pool}`);
    }
    checkVolumeId(sourceId);
    if (sourceId === volume.volumeId) throw invalid(`volume ${volume.volumeId} cannot be created from itself`);
    const source = await imageInfo(sourceId);
    if (!source) {
      throw permanentFailure(src.kind === "clone" ? "VOLUME_NOT_FOUND" : "NOT_FOUND", `${sourceId} does not exist in pool ${config.pool}`);
    }
    let sourceSize = source.size;
    let snapshot = `${CLONE_SNAPSHOT_PREFIX}${volume.volumeId}`;
    if (src.kind === "clone" && src.snapshot !== undefined) {
      if (!SNAPSHOT_NAME.test(src.snapshot)) throw invalid(`invalid snapshot name ${JSON.stringify(src.snapshot)}`);
      const snap = (await snapshots(sourceId)).find((s) => s.name === src.snapshot);
      if (!snap) throw permanentFailure("NOT_FOUND", `snapshot ${src.snapshot} of volume ${sourceId} does not exist`);
      sourceSize = snap.size;
      snapshot = snap.name;
    }
    if (sourceSize > volume.sizeBytes) {
      throw invalid(`volume ${volume.volumeId} (${volume.sizeBytes} B) is smaller than its source ${sourceId} (${sourceSize} B)`);
    }
    if (src.kind === "image" && !src.cow) return { copyFrom: source };
    return { parent: { image: sourceId, snapshot } };
  }

  async function rbdStatus(): Promise<PoolStatus> {
    const health = JSON.parse(await cli.run("ceph", ["health", "--format", "json"])) as {
      status: string;
      checks: Record<string, { summary: { message: string } }>;
    };
    const df = JSON.parse(await cli.run("ceph", ["df", "--format", "json"])) as {
      pools: { name: string; stats: { stored: number; max_avail: number } }[];
    };
    const pool = df.pools.find((p) => p.name === config.pool);
    if (!pool) return { health: "error", capacityBytes: 0, freeBytes: 0, volumeCount: 0, message: `pool ${config.pool} does not exist` };
    const images = JSON.parse(await cli.run("rbd", ["ls", "--format", "json", config.pool])) as string[];
    const byStatus: Record<string, PoolHealth> = { HEALTH_OK: "healthy", HEALTH_WARN: "degraded" };
    const checks = Object.entries(health.checks).map(([name, c]) => `${name}: ${c.summary.message}`);
    return {
      health: byStatus[health.status] ?? "error",
      capacityBytes: pool.stats.stored + pool.stats.max_avail,
      freeBytes: pool.stats.max_avail,
      volumeCount: images.filter((name) => !name.endsWith(PARTIAL_SUFFIX)).length,
      ...(checks.length > 0 ? { message: checks.join("; ") } : {}),
    };
  }

  return {
    kind: "rbd",

    async initPool() {
      const outcome = await cli.attempt("rbd", ["ls", "--format", "json", config.pool]);
      if (!outcome.ok) {
        throw permanentFailure(outcome.exitCode === ENOENT ? "POOL_NOT_FOUND" : "POOL_UNAVAILABLE", outcome.message);
      }
      const key = await cli.readKey();
      await ensureSecret(
        { libvirtUri: config.libvirtUri, uuid: config.secretUuid, usage: { type: "ceph", name: `quantix-rbd-${config.secretUuid}` } },
        key,
        "base64",
      );
    },

    async teardownPool() {
      await removeSecret(config.libvirtUri, config.secretUuid);
      await rm(confPath, { force: true });
    },

    async status() {
      try {
        return await rbdStatus();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        return { health: "error", capacityBytes: 0, freeBytes: 0, volumeCount: 0, message };
      }
    },

    async createVolume(volume) {
      checkVolumeId(volume.volumeId);
      checkSize(volume.sizeBytes);
      const { copyFrom, parent } = await plan(volume);
      let info = await imageInfo(volume.volumeId);
      if (!info) {
        if (parent) await cowClone(parent.image, parent.snapshot, volume.volumeId);
        else if (copyFrom) await fullCopy(copyFrom, volume.volumeId, () => undefined);
        else {
          const outcome = await cli.attempt("rbd", ["create", "--size", `${volume.sizeBytes}B`, spec(volume.volumeId)]);
          if (!outcome.ok && outcome.exitCode !== EEXIST) throw permanentFailure("STORAGE_ERROR", outcome.message);
        }
        info = await requireImage(volume.volumeId);
      }
      // An existing image is this call's earlier work (a retry) only if it has the requested
      // parentage and is not larger than asked; growing it finishes an interrupted create.
      const actualParent = info.parent ? `${info.parent.image}@${info.parent.snapshot}` : undefined;
      const wantedParent = parent ? `${parent.image}@${parent.snapshot}` : undefined;
      if (actualParent !== wantedParent || info.size > volume.sizeBytes) {
        throw permanentFailure("CONFLICT", `volume ${volume.volumeId} already exists with another source or size`);
      }
      await grow(volume.volumeId, info.size, volume.sizeBytes);
      return toVolumeInfo(volume.volumeId, await requireImage(volume.volumeId));
    },

    async volumeInfo(volumeId) {
      checkVolumeId(volumeId);
      const info = await imageInfo(volumeId);
      return info ? toVolumeInfo(volumeId, info) : null;
    },

    async deleteVolume(volumeId) {
      checkVolumeId(volumeId);
      const info = await imageInfo(volumeId);
      if (!info) return;
      await refuseIfOpen(volumeId, "delete");
      for (const snap of await snapshots(volumeId)) await removeSnapshot(volumeId, snap);
      await removeImage(volumeId);
      // Release the hidden snapshot this clone was made from, so that its parent stays deletable.
      const parent = info.parent;
      if (parent && parent.pool === config.pool && parent.snapshot.startsWith(CLONE_SNAPSHOT_PREFIX)) {
        await releaseCloneSnapshot(parent.image, parent.snapshot);
      }
    },

    async resizeVolume(volumeId, sizeBytes) {
      checkVolumeId(volumeId);
      checkSize(sizeBytes);
      const info = await requireImage(volumeId);
      if (sizeBytes < info.size) throw invalid(`volume ${volumeId} is ${info.size} B; shrinking to ${sizeBytes} B is refused`);
      await grow(volumeId, info.size, sizeBytes);
    },

    async copyVolume(sourceVolumeId, targetVolumeId, onProgress, signal) {
      checkVolumeId(sourceVolumeId);
      checkVolumeId(targetVolumeId);
      if (sourceVolumeId === targetVolumeId) throw invalid(`volume ${sourceVolumeId} cannot be copied onto itself`);
      const source = await requireImage(sourceVolumeId);
      const existing = await imageInfo(targetVolumeId);
      if (existing) {
        // Renamed into place only when complete: an independent image of the source's size is
        // this copy's earlier, finished work.
        if (existing.parent || existing.size !== source.size) {
          throw permanentFailure("CONFLICT", `volume ${targetVolumeId} already exists and is not a copy of ${sourceVolumeId}`);
        }
      } else {
        await fullCopy(source, targetVolumeId, onProgress, signal);
      }
      onProgress(source.size, source.size);
      return toVolumeInfo(targetVolumeId, await requireImage(targetVolumeId));
    },

    async createSnapshot(volumeId, name) {
      checkVolumeId(volumeId);
      if (!SNAPSHOT_NAME.test(name)) throw invalid(`invalid snapshot name ${JSON.stringify(name)}`);
      await requireImage(volumeId);
      await ensureSnapshot(volumeId, name);
    },

    async listSnapshots(volumeId): Promise<SnapshotInfo[]> {
      checkVolumeId(volumeId);
      await requireImage(volumeId);
      return (await snapshots(volumeId))
        .filter((s) => !s.name.startsWith(HIDDEN_SNAPSHOT_PREFIX))
        .map((s) => {
          const createdAt = isoTime(s.timestamp);
          return { name: s.name, sizeBytes: s.size, ...(createdAt ? { createdAt } : {}) };
        });
    },

    async deleteSnapshot(volumeId, name) {
      checkVolumeId(volumeId);
      if (!SNAPSHOT_NAME.test(name)) throw invalid(`invalid snapshot name ${JSON.stringify(name)}`);
      if (!(await imageInfo(volumeId))) return;
      const snap = (await snapshots(volumeId)).find((s) => s.name === name);
      if (snap) await removeSnapshot(volumeId, snap);
    },

    async revertSnapshot(volumeId, name) {
      checkVolumeId(volumeId);
      if (!SNAPSHOT_NAME.test(name)) throw invalid(`invalid snapshot name ${JSON.stringify(name)}`);
      await requireImage(volumeId);
      if (!(await snapshots(volumeId)).some((s) => s.name === name)) {
        throw permanentFailure("NOT_FOUND", `snapshot ${name} of volume ${volumeId} does not exist`);
      }
      await refuseIfOpen(volumeId, "revert");
      await cli.run("rbd", ["snap", "rollback", "--no-progress", `${spec(volumeId)}@${name}`]);
    },

    async listFiles(relativePath): Promise<FileEntry[]> {
      if (relativePath !== "") {
        throw permanentFailure("INVALID_PATH", `RBD pools have no directories: ${JSON.stringify(relativePath)}`);
      }
      const names = (JSON.parse(await cli.run("rbd", ["ls", "--format", "json", config.pool])) as string[]).filter(
        (name) => !name.endsWith(PARTIAL_SUFFIX),
      );
      const entries: FileEntry[] = [];
      for (let i = 0; i < names.length; i += LIST_CONCURRENCY) {
        const infos = await Promise.all(names.slice(i, i + LIST_CONCURRENCY).map((name) => imageInfo(name)));
        for (const info of infos) {
          // null: removed since the listing.
          if (info) entries.push({ name: info.name, type: "raw", sizeBytes: info.size, modifiedAt: isoTime(info.modify_timestamp) ?? "" });
        }
      }
      return entries;
    },

    async diskElement(volumeId): Promise<DiskElement> {
      checkVolumeId(volumeId);
      await requireImage(volumeId);
      const hosts = config.monitors.map((m) => {
        const colon = m.lastIndexOf(":");
        return { "@_name": m.slice(0, colon).replace(/^\[|\]$/g, ""), "@_port": m.slice(colon + 1) };
      });
      return {
        "@_type": "network",
        "@_device": "disk",
        driver: { "@_name": "qemu", "@_type": "raw" },
        source: { "@_protocol": "rbd", "@_name": spec(volumeId), host: hosts, config: { "@_file": await cli.ensureConf() } },
        auth: { "@_username": config.user, secret: { "@_type": "ceph", "@_uuid": config.secretUuid } },
      };
    },
  };
}
