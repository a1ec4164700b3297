/**
 * The image library's host activities, over the pools of this host that are directories here:
 * images live in `<pool>/images/` and seed ISOs in `<pool>/seeds/`, apart from the volumes in the
 * pool's root (whose file names are volume ids). Paths handed back to the control plane are
 * relative to the pool, which is what a VM's `baseImage` names.
 */
import { mkdir, rm, stat, statfs } from "node:fs/promises";
import path from "node:path";
import { confinePath } from "../../common/confine-path";
import { openSealedUrl, type SealedUrl } from "../../common/sealed-url";
import { permanentFailure, transientFailure } from "../../common/errors";
import { buildSeedIso, removeSeedIso, type BuildSeedIsoInput } from "./cloud-init";
import type { ImageKind } from "./content-type";
import { createImageDownloadActivities, type DownloadedImage, type DownloadSource, type ImageChecksum, type ImageDownloadDeps } from "./download";
import { imageFiles, removeIntermediateFiles } from "./image-files";
import { DEFAULT_FETCH_POLICY } from "./http-get";
import { createPublishedChecksumFetcher } from "./published-checksum";
import { assertSafeFileName } from "./safe-name";
import { SEEDS_DIR } from "../storage/qcow2-file-pool";

const IMAGES_DIR = "images";

/** A DownloadSource as it crosses Temporal: the URL's secret parts sealed (common/sealed-url.ts). */
export interface SealedDownloadSource {
  kind: DownloadSource["kind"];
  url: SealedUrl;
}

export interface PoolImageDownload {
  imageId: string;
  poolId: string;
  source: SealedDownloadSource;
  kind: ImageKind;
  expectedChecksum?: ImageChecksum;
  /** The configured limit; the pool's free space may lower it. */
  maxBytes: number;
}

export type PoolImage = Omit<DownloadedImage, "path"> & {
  /** Relative to the pool. */
  path: string;
};

export interface ImageStore {
  /** Absolute path of a file given relative to a pool, confined to that pool (must exist). */
  resolve(poolId: string, relativePath: string): Promise<string>;
}

/**
 * `secretsKey` opens the sealed parts of download URLs (credentials, signatures, upload tokens),
 * only in memory, only to fetch.
 */
export function createPoolImageActivities(poolDirs: Record<string, string>, downloadDeps: Partial<ImageDownloadDeps> = {}, secretsKey?: Buffer) {
  const downloads = createImageDownloadActivities(downloadDeps);
  const readPublishedChecksum = createPublishedChecksumFetcher(downloadDeps.fetchPolicy ?? DEFAULT_FETCH_POLICY);

  function poolRoot(poolId: string): string {
    const root = poolDirs[poolId];
    if (root === undefined) throw permanentFailure("NOT_SUPPORTED", `pool ${poolId} holds no images on this host (images need a directory pool)`);
    return root;
  }

  /** The pool's images or seeds directory, made on first use; a missing pool root (unmounted) is retried. */
  async function subdir(poolId: string, name: string): Promise<string> {
    const dir = path.join(poolRoot(poolId), name);
    try {
      await mkdir(dir, { mode: 0o755 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw transientFailure("POOL_UNAVAILABLE", `pool ${poolId} is not available on this host: its directory is missing`);
      if (code !== "EEXIST") throw err;
    }
    return dir;
  }

  /** The configured limit, lowered to what the pool can still hold (counting a partial file being resumed). */
  async function roomFor(dir: string, imageId: string, limit: number): Promise<number> {
    const fs = await statfs(dir);
    const partial = await stat(imageFiles(dir, imageId).partial).then((s) => s.size, () => 0);
    return Math.max(1, Math.min(limit, fs.bavail * fs.bsize + partial));
  }

  const store: ImageStore = {
    async resolve(poolId, relativePath) {
      return confinePath(poolRoot(poolId), relativePath);
    },
  };

  const activities = {
    /** Downloads an image into the pool's images directory (see download.ts); long, heartbeats, resumes. */
    async downloadImageToPool(input: PoolImageDownload): Promise<PoolImage> {
      assertSafeFileName("imageId", input.imageId);
      const dir = await subdir(input.poolId, IMAGES_DIR);
      const { imageId, kind, expectedChecksum } = input;
      const source: DownloadSource = { kind: input.source.kind, url: openSealedUrl(input.source.url, secretsKey) };
      const maxBytes = await roomFor(dir, imageId, input.maxBytes);
      const image = await downloads.downloadImage({ imageId, source, kind, maxBytes, targetDir: dir, ...(expectedChecksum ? { expectedChecksum } : {}) });
      return { ...image, path: path.posix.join(IMAGES_DIR, path.basename(image.path)) };
    },

    /**
     * Removes every file of an image, finished or not: the undo of a download that completed, and
     * the delete's host step. Idempotent. The caller makes sure no VM still has it as backing file.
     */
    async deleteImageFiles(input: { imageId: string; poolId: string }): Promise<void> {
      assertSafeFileName("imageId", input.imageId);
      const files = imageFiles(path.join(poolRoot(input.poolId), IMAGES_DIR), input.imageId);
      await removeIntermediateFiles(files);
      // The source record goes last: a qcow2 under the final name must never lack one.
      await Promise.all([rm(files.final("iso"), { force: true }), rm(files.final("disk"), { force: true })]);
      await rm(files.sourceRecord, { force: true });
    },

    /** The digest the publisher's sums file lists for the image (its URL's secret parts sealed, like the image's). */
    async fetchPublishedChecksum(input: { checksumFile: SealedUrl; fileUrl: string; algorithm: ImageChecksum["algorithm"] }): Promise<ImageChecksum> {
      return readPublishedChecksum({ checksumFileUrl: openSealedUrl(input.checksumFile, secretsKey), fileUrl: input.fileUrl, algorithm: input.algorithm });
    },

    /** The VM's NoCloud seed ISO in the pool's seeds directory; path relative to the pool. */
    async buildVmSeedIso(input: Omit<BuildSeedIsoInput, "dir"> & { poolId: string }): Promise<{ path: string }> {
      const { poolId, ...settings } = input;
      const dir = await subdir(poolId, SEEDS_DIR);
      const built = await buildSeedIso({ ...settings, dir });
      return { path: path.posix.join(SEEDS_DIR, path.basename(built.path)) };
    },

    /** Undo of buildVmSeedIso, and the delete's step. Success when already gone. */
    async removeVmSeedIso(input: { vmId: string; poolId: string }): Promise<void> {
      await removeSeedIso({ vmId: input.vmId, dir: path.join(poolRoot(input.poolId), SEEDS_DIR) });
    },
  };

  return { activities, store };
}

export type PoolImageActivities = ReturnType<typeof createPoolImageActivities>["activities"];
