import { openSecrets } from "../../common/sealed-secrets";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import type { z } from "zod";
import { permanentFailure } from "../../common/errors";
import { poolConfigSchemas, poolSecretSchemas, type PoolConfig, type PoolDefinition, type PoolSecrets } from "../../common/pool-kinds";
import type { StorageBackend } from "./backend";
import { createCephRbdBackend } from "./ceph-rbd";
import { createIscsiBackend } from "./iscsi";
import { createLocalDirBackend } from "./local-dir";
import { createNfsBackend } from "./nfs";

/**
 * Builds the backend of any pool a host is told about, by kind, from the pool's definition. What a
 * backend needs that is host-side (the libvirt URI, files for secrets) comes from `HostStorageContext`.
 */
export interface HostStorageContext {
  libvirtUri: string;
  /** This pool's private directory on the host (0700): Ceph keyring and client conf. */
  poolStateDir: string;
  /** Opens the definition's sealed secrets (common/sealed-secrets.ts). */
  secretsKey?: Buffer;
}

export type PoolBackendFactory = (definition: PoolDefinition, context: HostStorageContext) => Promise<StorageBackend>;

function parsed(schema: z.ZodType, input: unknown, what: string): unknown {
  const result = schema.safeParse(input);
  if (!result.success) throw permanentFailure("VALIDATION_FAILED", `invalid ${what}: ${result.error.message}`);
  return result.data;
}

/** Written atomically and private: a reader never sees half a key, and no other user any of it. */
export async function writePrivateFile(file: string, contents: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const staging = `${file}.${process.pid}.tmp`;
  await writeFile(staging, contents, { mode: 0o600 });
  await rename(staging, file);
}

const builders: { [K in PoolDefinition["kind"]]: (config: PoolConfig<K>, secrets: PoolSecrets<K>, context: HostStorageContext, poolId: string) => Promise<StorageBackend> } = {
  async dir(config) {
    return createLocalDirBackend({ root: config.path });
  },

  async nfs(config) {
    return createNfsBackend({ server: config.server, exportPath: config.exportPath, ...(config.mountPoint ? { mountPoint: config.mountPoint } : {}) });
  },

  async rbd(config, secrets, context, poolId) {
    // The CLIs and qemu read the key from a keyring file; the backend hands it on to libvirt's secret.
    const keyring = path.join(context.poolStateDir, "keyring");
    await writePrivateFile(keyring, `[client.${config.user}]\n\tkey = ${secrets.key}\n`);
    return createCephRbdBackend({
      pool: config.pool,
      monitors: config.monitors,
      user: config.user,
      keyring,
      // One libvirt secret per pool, its uuid derived from the pool id (a uuid itself for API pools).
      secretUuid: cephSecretUuid(poolId),
      libvirtUri: context.libvirtUri,
      confPath: path.join(context.poolStateDir, "ceph.conf"),
    });
  },

  async iscsi(config, secrets, context, poolId) {
    if (config.chapUsername && !secrets.chapPassword) throw permanentFailure("VALIDATION_FAILED", "a CHAP user needs secrets.chapPassword");
    return createIscsiBackend({
      portal: config.portal,
      target: config.target,
      libvirtUri: context.libvirtUri,
      ...(config.chapUsername && secrets.chapPassword
        ? { chap: { username: config.chapUsername, secretUsage: `quantix-iscsi-${poolId}`, password: secrets.chapPassword } }
        : {}),
    });
  },
};

/** The libvirt secret uuid of an RBD pool: the pool's own uuid, so nothing else needs storing. */
export function cephSecretUuid(poolId: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(poolId)) {
    throw permanentFailure("VALIDATION_FAILED", `an RBD pool needs a uuid id, not ${JSON.stringify(poolId)}`);
  }
  return poolId;
}

export const buildPoolBackend: PoolBackendFactory = async (definition, context) => {
  const kind = definition.kind;
  const config = parsed(poolConfigSchemas[kind], definition.config, `${kind} pool configuration`);
  const secrets = parsed(poolSecretSchemas[kind], openSecrets(definition.secrets, context.secretsKey), `${kind} pool secrets`);
  const build = builders[kind] as (c: unknown, s: unknown, ctx: HostStorageContext, id: string) => Promise<StorageBackend>;
  return build(config, secrets, context, definition.id);
};
