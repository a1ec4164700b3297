import { z } from "zod";

/** Request schemas of the image library and of a VM's boot image and access settings. */

const hexDigest = z.string().regex(/^[0-9a-fA-F]+$/, "hex digits");
export const checksumSchema = z
  .object({ algorithm: z.enum(["sha256", "sha512"]), value: hexDigest })
  .strict()
  .refine((c) => c.value.length === (c.algorithm === "sha256" ? 64 : 128), { message: "wrong length for the algorithm", path: ["value"] });

const name = z.string().min(1).max(200);
const poolId = z.string().min(1).max(128);
const kind = z.enum(["iso", "disk"]);
const os = z
  .object({ family: z.enum(["linux", "windows", "bsd", "other"]), distribution: z.string().min(1).max(64), version: z.string().min(1).max(64) })
  .strict();
const httpUrl = z.url({ protocol: /^https?$/ }).max(2048);

export const createImageBody = z.discriminatedUnion("source", [
  /** A catalog entry, by id (GET /v1/images/catalog). */
  z.object({ source: z.literal("catalog"), catalogId: z.string().min(1).max(63), poolId, name: name.optional() }).strict(),
  z.object({ source: z.literal("url"), url: httpUrl, name, kind, poolId, checksum: checksumSchema.optional(), os: os.optional() }).strict(),
  /** The image row only; its bytes follow with PUT /v1/images/:id/content. */
  z.object({ source: z.literal("upload"), name, kind, poolId, checksum: checksumSchema.optional(), os: os.optional() }).strict(),
]);

export type CreateImageBody = z.infer<typeof createImageBody>;

/** A VM's cloud-init access settings; the password is hashed by the API and never stored plain. */
export const accessSettingsSchema = z
  .object({
    /** Default: the VM's name. */
    hostname: z.string().min(1).max(253).optional(),
    defaultUser: z.string().min(1).max(32).optional(),
    sshAuthorizedKeys: z.array(z.string().max(16 * 1024)).max(32).default([]),
    password: z.string().min(1).max(512).optional(),
    /** "#cloud-config" followed by a JSON object (see activities/images/cloud-config.ts). */
    userData: z.string().max(32 * 1024).optional(),
  })
  .strict();

