import { z } from "zod";

/**
 * What a storage pool of each kind is configured with, validated once here for the API (input) and
 * the host worker (what it is told to build). Public configuration and secrets are separate
 * schemas because they are stored and shown separately:
 *
 * - `config` is stored on StoragePool and shown in API output.
 * - `secrets` (a Ceph client key, a CHAP password) are accepted on create, stored in their own table
 *   (StoragePoolSecret) that no presenter reads, and read only by the workflows that initialise the
 *   pool on a host, which pass them in that host activity's input sealed with QX_SECRETS_KEY
 *   (common/sealed-secrets.ts), so Temporal histories and the Temporal UI only ever show ciphertext.
 *   The host opens them to write a 0600 Ceph keyring and libvirt's private secrets; its copy of the
 *   pool definition keeps them sealed.
 */

const hostname = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, "a host name or IPv4 address");
const hostPort = z.string().regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/, '"host:port"');
const plainName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, "letters, digits, '.', '_' and '-'");
const absolutePath = z
  .string()
  .min(2)
  .max(1024)
  .refine((p) => p.startsWith("/") && !p.split("/").includes("..") && !/[\0\\%?#]/.test(p), "an absolute path without '..', '%', '?' or '#'");

export const poolConfigSchemas = {
  dir: z.object({ path: absolutePath }).strict(),
  nfs: z.object({ server: hostname, exportPath: absolutePath, mountPoint: absolutePath.optional() }).strict(),
  rbd: z.object({ pool: plainName, monitors: z.array(hostPort).min(1).max(16), user: plainName }).strict(),
  iscsi: z
    .object({
      portal: hostPort,
      target: z.string().regex(/^(?:iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(?::[A-Za-z0-9.:_-]+)?|eui\.[0-9A-Fa-f]{16})$/, "an IQN or EUI name"),
      chapUsername: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/).optional(),
    })
    .strict(),
} as const;

export const poolSecretSchemas = {
  dir: z.object({}).strict(),
  nfs: z.object({}).strict(),
  /** The client's base64 cephx key (`ceph auth get-key client.<user>`). */
  rbd: z.object({ key: z.string().regex(/^[A-Za-z0-9+/]{20,}={0,2}$/, "a base64 cephx key") }).strict(),
  iscsi: z.object({ chapPassword: z.string().min(1).max(255).optional() }).strict(),
} as const;

export type PoolKindName = keyof typeof poolConfigSchemas;

export type PoolConfig<K extends PoolKindName = PoolKindName> = z.infer<(typeof poolConfigSchemas)[K]>;
export type PoolSecrets<K extends PoolKindName = PoolKindName> = z.infer<(typeof poolSecretSchemas)[K]>;

/** Everything a host needs to reach a pool: what initStoragePool hands to each assigned host. */
export interface PoolDefinition {
  id: string;
  kind: PoolKindName;
  config: Record<string, unknown>;
  secrets: Record<string, string>;
}

/** Pool ids: uuids for pools made through the API, `local-<host>` for announced local pools. */
export const POOL_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;
