/**
 * downloadImage — runbook (also the upload's: then the URL is the API's staging endpoint)
 *   1. validate          load the image row, PENDING (or DOWNLOADING on a re-run); mark it DOWNLOADING
 *   2. place             the host that downloads into the pool (a local pool's own host); the image's
 *                        source read by reference, its URL's credentials (or an upload's token) sealed
 *                        for that host: no workflow input or history holds them in the clear
 *   3. resolve-checksum  only when no digest was given but the catalog names a published sums file:
 *                        read the digest on the host (the control plane may not reach the internet)
 *   4. download          on the host's download queue: stream, hash, check the content type and size,
 *                        resume after a crash; cancel stops it within a heartbeat
 *                        undo: delete the image's files (partial or finished)
 *   ── commit ──         the verified file is in the pool: no undo runs after this (a READY image
 *                        is never deleted by a failure or a cancel)
 *   5. record            the image READY with its size, format, checksum and path — retried until
 *                        it succeeds
 * On any failure or cancel the undos run in reverse and the image ends FAILED with the reason's
 * code (CHECKSUM_MISMATCH, CONTENT_TYPE_MISMATCH, CONTENT_TOO_LARGE, DOWNLOAD_FAILED, CANCELLED...);
 * if removing its files failed, ERROR with `cleanup` (host kept) for DELETE to finish.
 * Progress (bytes, rate, phase) travels in the download's heartbeats, which the API reads from the
 * workflow's pending activity: no database row is written per tick.
 */
import { ActivityCancellationType, ApplicationFailure, proxyActivities, upsertSearchAttributes } from "@temporalio/workflow";
import type { HostActivities } from "../activities/host";
import { HOST_ID } from "../common/search-attributes";
import { hostDownloadQueue } from "../common/task-queues";
import { database } from "./database-activities";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { cleanupAfterUndos } from "../common/cleanup";
import { OperationSaga } from "./operation-saga";

export interface DownloadImageInput {
  operationId: string;
  imageId: string;
  /** The configured limit; the host lowers it to the pool's free space. */
  maxBytes: number;
  timeouts: HostCallTimeouts;
}

// Reading a sums file is one small GET; a stalled mirror is retried a few times.
const CHECKSUM_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "2s", maximumInterval: "30s", maximumAttempts: 5 } };
// A download waits for a free slot on its host's download queue (QX_MAX_CONCURRENT_DOWNLOADS): queued
// behind other downloads is normal, so the host-unreachable cut-off of other steps does not apply.
const DOWNLOAD_SLOT_WAIT = "6h";
// A multi-GiB ISO over a slow mirror takes hours. A silent worker is presumed dead after 10 s, and the
// retried attempt resumes from the last heartbeat; broken-off transfers are retried the same way.
const DOWNLOAD_STEP = {
  startToCloseTimeout: "12h",
  heartbeatTimeout: "10s",
  retry: { initialInterval: "1s", backoffCoefficient: 2, maximumInterval: "1m", maximumAttempts: 20 },
};
// Undos must not give up quickly: they are what keeps the pool clean.
const UNDO = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 10 } };

const STEPS = 5;

export async function downloadImage(input: DownloadImageInput): Promise<void> {
  const { imageId } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const image = await saga.step("validate", async () => {
      const loaded = await database.loadImage(imageId);
      if (loaded.status !== "PENDING" && loaded.status !== "DOWNLOADING") {
        throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `image ${imageId} is ${loaded.status}, expected PENDING` });
      }
      await database.imageDownloadStarted(imageId);
      return loaded;
    });
    const { hostId, sources } = await saga.step("place", async () => {
      const placed = await database.placeImage(imageId);
      return { hostId: placed, sources: await database.imageDownloadSource({ imageId, hostId: placed }) };
    });
    upsertSearchAttributes([{ key: HOST_ID, value: hostId }]);

    const host = hostActivities(hostId, input.timeouts, CHECKSUM_STEP);
    const hostUndo = hostActivities(hostId, input.timeouts, UNDO);
    const downloads = proxyActivities<HostActivities>({
      taskQueue: hostDownloadQueue(hostId),
      scheduleToStartTimeout: DOWNLOAD_SLOT_WAIT,
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      ...DOWNLOAD_STEP,
    });

    let expectedChecksum = image.checksum;
    const checksumFile = image.checksumFile && sources.checksumFile ? { algorithm: image.checksumFile.algorithm, url: sources.checksumFile } : null;
    if (!expectedChecksum && checksumFile) {
      expectedChecksum = await saga.step("resolve-checksum", async () => {
        const published = await host.fetchPublishedChecksum({ checksumFile: checksumFile.url, fileUrl: sources.source.url.url, algorithm: checksumFile.algorithm });
        await database.imageChecksumResolved({ imageId, checksum: published });
        return published;
      });
    }

    const target = { imageId, poolId: image.poolId };
    const downloaded = await saga.step(
      "download",
      () =>
        downloads.downloadImageToPool({
          ...target,
          source: sources.source,
          kind: image.kind,
          maxBytes: input.maxBytes,
          ...(expectedChecksum ? { expectedChecksum } : {}),
        }),
      () => hostUndo.deleteImageFiles(target),
      { kind: "image-files", hostId, ...target },
    );
    await saga.commit("record", () =>
      database.imageReady({
        imageId,
        hostId,
        path: downloaded.path,
        sizeBytes: downloaded.sizeBytes,
        format: downloaded.format,
        sourceFormat: downloaded.sourceFormat,
        checksum: downloaded.checksum,
      }),
    );
  } catch (err) {
    await saga.fail(err, (failure, undoFailures) =>
      database.imageFailed({ imageId, errorCode: failure.code, errorMessage: failure.message, cleanup: cleanupAfterUndos(input.operationId, undoFailures) }),
    );
  }
}
