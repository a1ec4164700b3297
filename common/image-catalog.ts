import { readFile } from "node:fs/promises";
import { z } from "zod";
import builtInCatalog from "../catalog/images.json";

/**
 * The catalog of well-known images users can import by id: the built-in list
 * (catalog/images.json) plus an optional operator file of the same shape. An operator entry with
 * a built-in id replaces that entry (to pin a local mirror or a checksum); within one file an id
 * may appear only once. Upstream checksums change with every rebuild of a "latest" image, so the
 * built-in entries name the published checksum file rather than a digest.
 */

const checksumAlgorithm = z.enum(["sha256", "sha512"]);
const HEX_LENGTH = { sha256: 64, sha512: 128 } as const;
const httpUrl = z.url({ protocol: /^https?$/ });

const catalogEntry = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "lower-case letters, digits, '.', '_', '-'; at most 63"),
    name: z.string().min(1).max(200),
    kind: z.enum(["iso", "disk"]),
    os: z.strictObject({
      family: z.enum(["linux", "windows", "bsd", "other"]),
      distribution: z.string().min(1).max(64),
      version: z.string().min(1).max(64),
    }),
    url: httpUrl,
    format: z.enum(["iso", "qcow2", "raw", "vmdk", "vhdx", "vpc"]),
    /** The digest of the file at `url`, when it is pinned. */
    checksum: z.strictObject({ algorithm: checksumAlgorithm, value: z.string().regex(/^[0-9a-f]+$/, "lower-case hex") }).optional(),
    /** A published sums file (sha256sum or BSD style) that lists the file at `url`. */
    checksumFile: z.strictObject({ algorithm: checksumAlgorithm, url: httpUrl }).optional(),
  })
  .refine((e) => (e.kind === "iso") === (e.format === "iso"), { message: "kind iso goes with format iso, kind disk with a disk format", path: ["format"] })
  .refine((e) => !e.checksum || e.checksum.value.length === HEX_LENGTH[e.checksum.algorithm], { message: "checksum value has the wrong length for its algorithm", path: ["checksum", "value"] })
  .refine((e) => !(e.checksum && e.checksumFile), { message: "give checksum or checksumFile, not both", path: ["checksumFile"] });

const catalogFile = z.strictObject({ images: z.array(catalogEntry) });

export type ImageCatalogEntry = z.infer<typeof catalogEntry>;

function parseCatalog(source: string, data: unknown): ImageCatalogEntry[] {
  const parsed = catalogFile.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);
    throw new Error(`image catalog ${source} is invalid:\n  ${issues.join("\n  ")}`);
  }
  const firstIndex = new Map<string, number>();
  parsed.data.images.forEach((entry, index) => {
    const first = firstIndex.get(entry.id);
    if (first !== undefined) throw new Error(`image catalog ${source}: id "${entry.id}" appears twice (images.${first} and images.${index})`);
    firstIndex.set(entry.id, index);
  });
  return parsed.data.images;
}

/** The built-in catalog, with the entries of `extraFile` (if given) merged over it. */
export async function loadImageCatalog(extraFile?: string): Promise<ImageCatalogEntry[]> {
  const merged = new Map(parseCatalog("catalog/images.json", builtInCatalog).map((e) => [e.id, e]));
  if (extraFile !== undefined) {
    let data: unknown;
    try {
      data = JSON.parse(await readFile(extraFile, "utf8"));
    } catch (err) {
      throw new Error(`image catalog ${extraFile} cannot be read: ${(err as Error).message}`);
    }
    for (const entry of parseCatalog(extraFile, data)) merged.set(entry.id, entry);
  }
  return [...merged.values()];
}
