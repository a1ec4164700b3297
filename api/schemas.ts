import { z } from "zod";
import { VM_POWER_ACTIONS } from "../common/operations";
import { accessSettingsSchema } from "./image-schemas";
import { POOL_ID, poolConfigSchemas, poolSecretSchemas, type PoolKindName } from "../common/pool-kinds";
import { vmNics } from "./network-schemas";

/**
 * Request schemas, defined once; handler input types derive from them. Names are plain
 * identifiers: no XML or shell metacharacters reach a domain definition or a command line.
 */
const relativePoolPath = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes("..") && !p.includes("\0") && !p.includes("\\"), "must be a relative path inside the pool");

/** Data disks a VM is created with; more can be attached later (up to sdz). */
export const MAX_VM_DATA_DISKS = 8;

export const createVmBody = z
  .object({
    name: z
      .string()
      .min(1)
      .max(63)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-', starting with a letter or digit"),
    vcpus: z.number().int().min(1).max(64),
    memoryMiB: z.number().int().min(32).max(1024 * 1024),
    diskSizeGiB: z.number().int().min(1).max(64 * 1024),
    poolId: z.string().min(1).max(128).optional(),
    baseImage: relativePoolPath.optional(),
    /** A READY image to boot from: a cloud image becomes the boot disk's backing file, an ISO the first CD-ROM. */
    imageId: z.string().uuid().optional(),
    /** cloud-init access settings: the VM gets a NoCloud seed ISO built from them. */
    access: accessSettingsSchema.optional(),
    /** Empty data disks made with the VM, each a volume attached in order at sda, sdb... */
    disks: z
      .array(z.object({ poolId: z.string().regex(POOL_ID, "a pool id"), sizeGiB: z.number().int().min(1).max(64 * 1024) }).strict())
      .max(MAX_VM_DATA_DISKS)
      .optional(),
    /** NICs on virtual networks (issue 10): a port each, address and MAC chosen by the API. */
    nics: vmNics.optional(),
  })
  .strict();

export type CreateVmBody = z.infer<typeof createVmBody>;

export const powerActionParam = z.enum(VM_POWER_ACTIONS);

export const powerActionBody = z
  .object({
    /** Graceful stop only: how long to wait for the guest to power off. */
    timeoutSeconds: z.number().int().min(1).max(3600).optional(),
  })
  .strict();

export const listOperationsQuery = z
  .object({
    targetId: z.string().max(128).optional(),
    state: z.enum(["PENDING", "RUNNING", "COMPENSATING", "COMPLETED", "FAILED", "CANCELLED"]).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();

export const idParam = z.string().uuid();

// Storage pools and volumes ---------------------------------------------------------------------

const resourceName = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-', starting with a letter or digit");

const hostIdParam = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "a host id");

export const poolIdParam = z.string().regex(POOL_ID, "a pool id");
export const hostIdPathParam = hostIdParam;

const provisioningRatio = z.number().positive().max(1000).optional();

function createPoolVariant<K extends PoolKindName>(kind: K) {
  return z
    .object({
      name: resourceName,
      kind: z.literal(kind),
      config: poolConfigSchemas[kind],
      /** Write-only: stored apart and never returned (see common/pool-kinds.ts). */
      secrets: poolSecretSchemas[kind].optional(),
      /** Hosts to initialise the pool on now; more can be assigned later. */
      hostIds: z.array(hostIdParam).max(64).default([]),
      /** Thin provisioning: volumes and images may total this × capacity (api/pool-capacity.ts). */
      provisioningRatio,
    })
    .strict();
}

export const createPoolBody = z.discriminatedUnion("kind", [
  createPoolVariant("dir"),
  createPoolVariant("nfs"),
  createPoolVariant("rbd"),
  createPoolVariant("iscsi"),
]);
export type CreatePoolBody = z.infer<typeof createPoolBody>;

/** config and secrets are checked against the pool's kind by the use case. */
export const updatePoolBody = z
  .object({
    name: resourceName.optional(),
    config: z.record(z.string(), z.unknown()).optional(),
    secrets: z.record(z.string(), z.unknown()).optional(),
    /** null goes back to the control plane's default. */
    provisioningRatio: z.number().positive().max(1000).nullable().optional(),
  })
  .strict();
export type UpdatePoolBody = z.infer<typeof updatePoolBody>;

/** `path` is checked (and rejected with INVALID_PATH) by the use case, not here: a 400 must name why. */
export const listFilesQuery = z.object({ path: z.string().max(1024).default("") }).strict();

const sizeGiB = z.number().int().min(1).max(64 * 1024);

export const createVolumeBody = z.object({ name: resourceName, poolId: poolIdParam, sizeGiB }).strict();
export type CreateVolumeBody = z.infer<typeof createVolumeBody>;

export const resizeVolumeBody = z.object({ sizeGiB }).strict();

export const cloneVolumeBody = z.object({ name: resourceName, mode: z.enum(["linked", "full"]).default("linked") }).strict();
export type CloneVolumeBody = z.infer<typeof cloneVolumeBody>;

/** Starts with a letter (qemu looks snapshots up by numeric id first); "qx-" is the backends' own. */
export const snapshotName = z
  .string()
  .regex(/^(?!qx-)[A-Za-z][A-Za-z0-9_.-]{0,62}$/, "a letter, then letters, digits, '.', '_' and '-' (not starting with qx-)");

export const createSnapshotBody = z.object({ name: snapshotName }).strict();

export const attachVolumeBody = z.object({ vmId: z.string().uuid() }).strict();
