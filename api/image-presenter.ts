import type { Image } from "@prisma/client";
import type { DownloadProgress } from "../activities/images/progress";
import { publicError } from "./public-message";

/** Origin and path only: a URL's user info or query may carry credentials or signed tokens. */
function displayUrl(raw: string | null): string | null {
  if (!raw) return null;
  const url = new URL(raw);
  return `${url.origin}${url.pathname}`;
}

/**
 * An image as the API shows it. While its download runs, `progress` comes live from the download's
 * heartbeat, and the status reads VERIFYING once every byte is in (checksum, format checks, qcow2
 * conversion): a phase the database never stores, since it changes with the heartbeats.
 */
export function presentImage(image: Image, live: DownloadProgress | null = null) {
  const verifying = image.status === "DOWNLOADING" && live !== null && live.phase !== "downloading";
  return {
    id: image.id,
    name: image.name,
    kind: image.kind,
    os: image.osFamily ? { family: image.osFamily, distribution: image.osDistribution, version: image.osVersion } : null,
    status: verifying ? "VERIFYING" : image.status,
    progress: live
      ? {
          phase: live.phase,
          bytesDone: live.bytesDone,
          bytesTotal: live.bytesTotal,
          bytesPerSecond: live.bytesPerSecond,
          percent: live.bytesTotal ? Math.min(100, Math.floor((live.bytesDone / live.bytesTotal) * 100)) : null,
        }
      : { percent: image.progress },
    format: image.format,
    sourceFormat: image.sourceFormat,
    sizeBytes: image.sizeBytes === null ? null : Number(image.sizeBytes),
    checksum: image.checksumAlgorithm && image.checksumValue ? { algorithm: image.checksumAlgorithm, value: image.checksumValue } : null,
    source: image.catalogId ? { catalogId: image.catalogId, url: displayUrl(image.sourceUrl) } : image.sourceUrl ? { url: displayUrl(image.sourceUrl) } : { upload: true },
    poolId: image.poolId,
    hostId: image.hostId,
    path: image.path,
    error: publicError(image.errorCode, image.errorMessage),
    // ERROR: what failed and what is left (common/cleanup.ts); DELETE finishes the job.
    cleanup: image.cleanup,
    createdAt: image.createdAt,
    updatedAt: image.updatedAt,
    links: { self: `/v1/images/${image.id}`, content: `/v1/images/${image.id}/content`, operations: `/v1/operations?targetId=${image.id}` },
  };
}
