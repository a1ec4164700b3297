import { z } from "zod";
import { VM_POWER_ACTIONS } from "../common/operations";

/**
 * Request schemas, defined once; handler input types derive from them. Names are plain
 * identifiers: no XML or shell metacharacters reach a domain definition or a command line.
 */
const relativePoolPath = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes("..") && !p.includes("\0") && !p.includes("\\"), "must be a relative path inside the pool");

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
