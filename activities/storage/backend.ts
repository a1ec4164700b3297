/**
 * One interface for every kind of storage pool a host can reach. Each backend lives in its own
 * file (local-dir.ts, nfs.ts, ceph-rbd.ts, iscsi.ts) and is built by a factory over its pool's
 * configuration. Every method is idempotent: a retried call finds its own earlier work (a volume
 * that already exists with the requested shape is success; deleting what is gone is success).
 */

export type PoolKind = "dir" | "nfs" | "rbd" | "iscsi";

export type PoolHealth = "healthy" | "degraded" | "error" | "unmounted";

export interface PoolStatus {
  health: PoolHealth;
  capacityBytes: number;
  freeBytes: number;
  volumeCount: number;
  /** Why the pool is not healthy, for operators. */
  message?: string;
}

/** Where a new volume's content comes from. */
export type VolumeSource =
  | { kind: "empty" }
  /** A base image file inside this pool (relative path), e.g. a cloud image. */
  | { kind: "image"; path: string; cow: boolean }
  /** A copy-on-write clone of another volume of this pool, or of one of its snapshots. */
  | { kind: "clone"; volumeId: string; snapshot?: string };

export interface VolumeSpec {
  /** Chosen by the control plane before any side effect; the backend names storage after it. */
  volumeId: string;
  sizeBytes: number;
  source: VolumeSource;
}

export interface VolumeInfo {
  volumeId: string;
  /** Backend-specific locator (file path, rbd image spec, LUN URL) for logs and tests. */
  location: string;
  format: "qcow2" | "raw";
  sizeBytes: number;
  allocatedBytes: number;
  /** The volume this one is a copy-on-write child of, if any. */
  backingVolumeId?: string;
}

export interface SnapshotInfo {
  name: string;
  createdAt?: string;
  sizeBytes?: number;
}

/** "broken-link": a symlink inside the pool whose target is missing or that loops (see FileEntry.linkProblem). */
export type FileType = "directory" | "qcow2" | "iso" | "raw" | "vmdk" | "other" | "broken-link";

export interface FileEntry {
  name: string;
  type: FileType;
  sizeBytes: number;
  modifiedAt: string;
  /** Only for a broken link: shown as such, so one bad link neither hides nor breaks the listing. */
  linkProblem?: "dangling" | "loop";
}

/** Progress of a long copy, reported through activity heartbeats. */
export type CopyProgress = (bytesDone: number, bytesTotal: number) => void;

/**
 * A libvirt <disk> element as a fast-xml-parser builder object (attributes prefixed "@_"), without
 * <target>: the domain builder adds the target device and bus.
 */
export type DiskElement = Record<string, unknown>;

export interface StorageBackend {
  readonly kind: PoolKind;

  /** Makes the pool usable on this host (directories, libvirt secrets, ...). Idempotent. */
  initPool(): Promise<void>;
  /** Undoes initPool on this host; never deletes volumes. Idempotent. */
  teardownPool(): Promise<void>;
  status(): Promise<PoolStatus>;

  createVolume(spec: VolumeSpec): Promise<VolumeInfo>;
  /** Null when the volume does not exist. */
  volumeInfo(volumeId: string): Promise<VolumeInfo | null>;
  /** Success when the volume is already gone. */
  deleteVolume(volumeId: string): Promise<void>;
  /** Grow only; smaller sizes fail with VALIDATION_FAILED. */
  resizeVolume(volumeId: string, sizeBytes: number): Promise<void>;
  /** Full, independent copy; `signal` aborts it and the partial target is removed. */
  copyVolume(sourceVolumeId: string, targetVolumeId: string, onProgress: CopyProgress, signal?: AbortSignal): Promise<VolumeInfo>;

  createSnapshot(volumeId: string, name: string): Promise<void>;
  listSnapshots(volumeId: string): Promise<SnapshotInfo[]>;
  deleteSnapshot(volumeId: string, name: string): Promise<void>;
  revertSnapshot(volumeId: string, name: string): Promise<void>;

  /** Lists a directory of the pool; `relativePath` is confined to the pool. */
  listFiles(relativePath: string): Promise<FileEntry[]>;

  /** The <disk> element that attaches the volume to a guest on this host. */
  diskElement(volumeId: string): Promise<DiskElement>;

  /**
   * Pools whose volumes are pre-provisioned units (iSCSI LUNs) only: the same pool, also knowing
   * which unit each of these volumes is. The control plane owns that map and passes it per call.
   */
  withLunAssignments?(lunAssignments: LunAssignments): StorageBackend;
}

/** volumeId → LUN number of an iSCSI pool. */
export type LunAssignments = Record<string, number>;
