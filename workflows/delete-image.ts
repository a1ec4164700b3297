/**
 * deleteImage — runbook
 *   1. validate      refuse while a VM boots from the image (its file backs their disks); mark it DELETING
 *   2. delete-files  remove the image's files on the host that holds them (partial ones too)
 *   ── commit ──     the files are gone
 *   3. record        remove the image row; the Operation row stays as the record — retried until
 *                    it succeeds
 * No step has an undo: a deleted file cannot be put back, so deletion recovers forward. Every step
 * is idempotent; if one fails the image goes to ERROR with `cleanup` (its host kept) and a
 * repeated DELETE finishes the job. An image that never reached a host (an upload never sent) skips the host step.
 */
import { failedForwardStep } from "../common/cleanup";
import { database } from "./database-activities";
import { hostActivities, type HostCallTimeouts } from "./host-activities";
import { OperationSaga } from "./operation-saga";

export interface DeleteImageInput {
  operationId: string;
  imageId: string;
  timeouts: HostCallTimeouts;
}

// Removing a few files takes milliseconds; two minutes covers a slow NFS pool.
const HOST_STEP = { startToCloseTimeout: "2m", retry: { initialInterval: "1s", maximumInterval: "10s", maximumAttempts: 5 } };

const STEPS = 3;

export async function deleteImage(input: DeleteImageInput): Promise<void> {
  const { imageId } = input;
  const saga = new OperationSaga(input.operationId, STEPS, input.timeouts);
  try {
    const image = await saga.step("validate", async () => {
      const loaded = await database.loadImage(imageId);
      await database.imageDeleting(imageId);
      return loaded;
    });
    if (image.hostId) {
      const host = hostActivities(image.hostId, input.timeouts, HOST_STEP);
      await saga.step("delete-files", () => host.deleteImageFiles({ imageId, poolId: image.poolId }));
    }
    await saga.commit("record", () => database.imageDeleted(imageId));
  } catch (err) {
    await saga.fail(err, (failure) => database.imageDeleteFailed({ imageId, failed: failedForwardStep(input.operationId, failure) }));
  }
}
