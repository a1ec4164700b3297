import { Prisma, type ImageKind, type ImageStatus, type PrismaClient } from "@prisma/client";
import type { FailedCleanupStep, Leftover, PendingCleanup } from "../../common/cleanup";
import { permanentFailure } from "../../common/errors";
import { parseSecretsKey } from "../../common/sealed-secrets";
import { openUrlSecrets, sealUrlSecrets, type SealedUrl } from "../../common/sealed-url";
import type { ImageChecksum } from "../images/download";
import type { SealedDownloadSource } from "../images/pool-images";
import type { ImageFormat } from "../images/content-type";
import { freshSince, type PoolFreshness } from "./pools";

export interface ImageSpec {
  id: string;
  name: string;
  kind: ImageKind;
  status: ImageStatus;
  poolId: string;
  hostId: string | null;
  /** A given (or already resolved) digest of the downloaded bytes. */
  checksum: ImageChecksum | null;
  /** The publisher's sums file to read the digest from, when none was given. */
  checksumFile: { algorithm: ImageChecksum["algorithm"]; url: string } | null;
  sourceUrl: string | null;
}

export interface ImageDownloaded {
  imageId: string;
  hostId: string;
  path: string;
  sizeBytes: number;
  format: ImageFormat;
  sourceFormat: ImageFormat;
  checksum: ImageChecksum;
}

function checksumAlgorithmOf(value: string | null): ImageChecksum["algorithm"] | null {
  return value === "sha256" || value === "sha512" ? value : null;
}

/** The Image rows: what GET /v1/images shows, kept current by downloadImage and deleteImage. */
/** The image's sources for one host: public parts as the row has them, secret parts sealed for that host. */
export interface ImageDownloadSources {
  source: SealedDownloadSource;
  checksumFile: SealedUrl | null;
}

export function createImageRecordActivities(prisma: PrismaClient, policy: PoolFreshness & { secretsKey?: string }) {
  const secretsKey = parseSecretsKey(policy.secretsKey);
  /**
   * Kept sealed under the control plane's key, opened here and sealed again for the host that
   * fetches. Today both are QX_SECRETS_KEY; the second seal is the one per-host keys replace.
   */
  const resealedFor = (_hostId: string, sealed: Record<string, string> | undefined): Record<string, string> =>
    sealed ? sealUrlSecrets(openUrlSecrets(sealed, secretsKey), secretsKey) : {};
  return {
    async loadImage(imageId: string): Promise<ImageSpec> {
      const image = await prisma.image.findUnique({ where: { id: imageId } });
      if (!image) throw permanentFailure("NOT_FOUND", `image ${imageId} does not exist`);
      const algorithm = checksumAlgorithmOf(image.checksumAlgorithm);
      const checksum: ImageChecksum | null = algorithm && image.checksumValue ? { algorithm, value: image.checksumValue } : null;
      const checksumFile = algorithm && image.checksumFileUrl ? { algorithm, url: image.checksumFileUrl } : null;
      return {
        id: image.id,
        name: image.name,
        kind: image.kind,
        status: image.status,
        poolId: image.poolId,
        hostId: image.hostId,
        checksum,
        checksumFile,
        sourceUrl: image.sourceUrl,
      };
    },

    /** The download begins (or a retried workflow task re-runs this): clears an earlier error. */
    async imageDownloadStarted(imageId: string): Promise<void> {
      await prisma.image.updateMany({
        where: { id: imageId, status: { in: ["PENDING", "DOWNLOADING"] } },
        data: { status: "DOWNLOADING", progress: 0, errorCode: null, errorMessage: null },
      });
    },

    /**
     * The host that downloads into the pool, recorded on the image (it holds the file of a
     * host-local pool). Idempotent: an image already placed keeps its host. Any host with the pool
     * healthy, freshly reported and online will do for a shared pool: a silent host would leave the
     * download queued on its queue for hours.
     */
    async placeImage(imageId: string): Promise<string> {
      const image = await prisma.image.findUniqueOrThrow({ where: { id: imageId } });
      if (image.hostId) return image.hostId;
      const candidate = await prisma.storagePoolHost.findFirst({
        where: { poolId: image.poolId, health: "healthy", reportedAt: { gte: freshSince(policy) }, host: { state: "ONLINE" } },
        orderBy: { hostId: "asc" },
      });
      if (!candidate) throw permanentFailure("NO_HOST_AVAILABLE", `no online host has pool ${image.poolId} healthy`);
      await prisma.image.update({ where: { id: imageId }, data: { hostId: candidate.hostId } });
      return candidate.hostId;
    },

    /**
     * Where the host fetches the image from, by reference: the image's URL (or an upload's staging
     * URL) and its sums file's, their user info, query and token sealed for that host. What crosses
     * Temporal here is ciphertext; the host joins the URL back in memory.
     */
    async imageDownloadSource(input: { imageId: string; hostId: string }): Promise<ImageDownloadSources> {
      const image = await prisma.image.findUnique({ where: { id: input.imageId }, include: { sourceSecret: true } });
      if (!image) throw permanentFailure("NOT_FOUND", `image ${input.imageId} does not exist`);
      const secrets = (image.sourceSecret?.values ?? {}) as { source?: Record<string, string>; checksumFile?: Record<string, string> };
      const url = image.sourceUrl ?? image.uploadUrl;
      if (!url) throw permanentFailure("CONFLICT", `image ${input.imageId} has no content to fetch yet`);
      return {
        source: { kind: image.sourceUrl ? "url" : "staged-upload", url: { url, sealed: resealedFor(input.hostId, secrets.source) } },
        checksumFile: image.checksumFileUrl ? { url: image.checksumFileUrl, sealed: resealedFor(input.hostId, secrets.checksumFile) } : null,
      };
    },

    /** A digest read from the publisher's sums file becomes the expected checksum. */
    async imageChecksumResolved(input: { imageId: string; checksum: ImageChecksum }): Promise<void> {
      await prisma.image.update({
        where: { id: input.imageId },
        data: { checksumAlgorithm: input.checksum.algorithm, checksumValue: input.checksum.value },
      });
    },

    /** The download's last step: the file is verified and in place. */
    async imageReady(input: ImageDownloaded): Promise<void> {
      // The credentials of its URL were for this download only.
      await prisma.imageSourceSecret.deleteMany({ where: { imageId: input.imageId } });
      await prisma.image.update({
        where: { id: input.imageId },
        data: {
          status: "READY",
          progress: 100,
          hostId: input.hostId,
          path: input.path,
          sizeBytes: BigInt(input.sizeBytes),
          format: input.format,
          sourceFormat: input.sourceFormat,
          checksumAlgorithm: input.checksum.algorithm,
          checksumValue: input.checksum.value,
          uploadTokenHash: null,
          errorCode: null,
          errorMessage: null,
        },
      });
    },

    /**
     * A download that did not finish: its files are gone (the undos ran); the row stays FAILED with
     * the reason. If removing them failed (`cleanup`), ERROR: the host and path stay for DELETE.
     * Only an image this download was for (PENDING or DOWNLOADING) changes: a run refused at
     * validate — a late second upload's, say — leaves a READY (or FAILED, or DELETING) image exactly
     * as it was.
     */
    async imageFailed(input: { imageId: string; errorCode: string; errorMessage: string; cleanup?: PendingCleanup | null }): Promise<void> {
      const trail = input.cleanup ? { status: "ERROR" as const, cleanup: input.cleanup as unknown as Prisma.InputJsonValue } : { status: "FAILED" as const, path: null };
      await prisma.$transaction(async (tx) => {
        const failed = await tx.image.updateMany({
          where: { id: input.imageId, status: { in: ["PENDING", "DOWNLOADING"] } },
          data: { ...trail, uploadTokenHash: null, errorCode: input.errorCode, errorMessage: input.errorMessage },
        });
        if (failed.count > 0) await tx.imageSourceSecret.deleteMany({ where: { imageId: input.imageId } });
      });
    },

    /** Refuses while any VM boots from the image (its file backs their disks); else marks it DELETING. */
    async imageDeleting(imageId: string): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const image = await tx.image.findUnique({ where: { id: imageId } });
        if (!image) throw permanentFailure("NOT_FOUND", `image ${imageId} does not exist`);
        const users = await tx.vm.findMany({
          where: { OR: [{ imageId }, ...(image.path ? [{ poolId: image.poolId, baseImage: image.path }] : [])] },
          select: { id: true },
          take: 5,
        });
        if (users.length > 0) {
          throw permanentFailure("IMAGE_IN_USE", `image ${imageId} is used by VM ${users.map((vm) => vm.id).join(", ")}`);
        }
        await tx.image.update({ where: { id: imageId }, data: { status: "DELETING" } });
      });
    },

    /** A delete that did not finish: ERROR with what is left (its files on its host); a repeated DELETE finishes the job. */
    async imageDeleteFailed(input: { imageId: string; failed: FailedCleanupStep }): Promise<void> {
      const image = await prisma.image.findUnique({ where: { id: input.imageId } });
      if (!image || image.status !== "DELETING") return;
      const remains: Leftover[] = image.hostId ? [{ kind: "image-files", hostId: image.hostId, poolId: image.poolId, imageId: image.id }] : [];
      const cleanup: PendingCleanup = { operationId: input.failed.operationId, failed: [input.failed], remains };
      await prisma.image.update({
        where: { id: image.id },
        data: { status: "ERROR", errorCode: input.failed.code, errorMessage: `delete did not finish: ${input.failed.message}`, cleanup: cleanup as unknown as Prisma.InputJsonValue },
      });
    },

    /** The delete's last step. Idempotent. */
    async imageDeleted(imageId: string): Promise<void> {
      await prisma.image.deleteMany({ where: { id: imageId } });
    },
  };
}
