import type { Prisma } from "@prisma/client";
import { ApplicationFailure } from "@temporalio/common";
import { buildUserData } from "../../activities/images/cloud-config";
import { hashPassword, normaliseSshKeys } from "../../common/access-settings";
import { isErrorCode } from "../../common/errors";
import type { CloudInitSettings } from "../../activities/database/vm-boot-media";
import { ApiError } from "../problem";
import type { CreateVmBody } from "../schemas";

/** Validation failures of the shared (activity-side) checks, as the API's typed errors. */
function asApiError(err: unknown): unknown {
  if (err instanceof ApplicationFailure && isErrorCode(err.type)) return new ApiError(err.type, err.message);
  return err;
}

/**
 * Where the VM's boot disk comes from. With `imageId`: a READY cloud image backs the boot disk (its
 * path becomes `baseImage`), an ISO is attached as a CD-ROM; either way the VM goes to the image's
 * pool, which for a local pool is also its host.
 */
export async function bootImageOf(tx: Prisma.TransactionClient, body: CreateVmBody): Promise<{ poolId: string | null; baseImage: string | null; imageId: string | null }> {
  if (!body.imageId) return { poolId: body.poolId ?? null, baseImage: body.baseImage ?? null, imageId: null };
  if (body.baseImage) throw new ApiError("VALIDATION_FAILED", "give imageId or baseImage, not both");
  const image = await tx.image.findUnique({ where: { id: body.imageId } });
  if (!image) throw new ApiError("VALIDATION_FAILED", `image ${body.imageId} does not exist`);
  if (image.status !== "READY" || !image.path) throw new ApiError("CONFLICT", `image ${body.imageId} is ${image.status}, not READY`);
  if (body.poolId && body.poolId !== image.poolId) throw new ApiError("VALIDATION_FAILED", `image ${image.id} is in pool ${image.poolId}, not ${body.poolId}`);
  if (image.kind === "disk" && image.sizeBytes !== null && Number(image.sizeBytes) > body.diskSizeGiB * 1024 ** 3) {
    // The real check (virtual size) is the host's: this catches the obvious case early.
    throw new ApiError("VALIDATION_FAILED", `diskSizeGiB ${body.diskSizeGiB} is smaller than image ${image.id}`);
  }
  return { poolId: image.poolId, baseImage: image.kind === "disk" ? image.path : null, imageId: image.id };
}

/**
 * The VM's cloud-init settings, checked now (keys, host name, user-data: what the host would refuse)
 * and with the password replaced by its SHA-512 crypt hash: the plain text stops here.
 */
export function cloudInitOf(body: CreateVmBody): CloudInitSettings | null {
  const access = body.access;
  if (!access) return null;
  try {
    const settings: CloudInitSettings = {
      hostname: access.hostname ?? body.name.toLowerCase().replace(/[._]/g, "-"),
      sshAuthorizedKeys: normaliseSshKeys(access.sshAuthorizedKeys),
      ...(access.defaultUser ? { defaultUser: access.defaultUser } : {}),
      ...(access.password ? { passwordHash: hashPassword(access.password) } : {}),
      ...(access.userData ? { userData: access.userData } : {}),
    };
    buildUserData(settings);
    return settings;
  } catch (err) {
    throw asApiError(err);
  }
}

/** The request as recorded on the operation: no password (the Idempotency-Key hash covers it, keyed). */
export function recordableCreateVmBody(body: CreateVmBody): CreateVmBody {
  if (!body.access?.password) return body;
  return { ...body, access: { ...body.access, password: "(set)" } };
}
