import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { permanentFailure } from "./errors";

/**
 * Pool secrets (Ceph keys, CHAP passwords) cross Temporal on their way from the database to a host,
 * and everything that crosses Temporal is kept in workflow histories that the Temporal UI shows.
 * So the control plane seals each value (AES-256-GCM) before it leaves the database step, and only
 * the host that builds the pool's backend opens it. The key, QX_SECRETS_KEY (32 bytes, base64), is
 * configured on the control-plane worker and on every host worker, as Temporal's encryption codecs are.
 */

const PREFIX = "qx-sealed:v1:";

export function parseSecretsKey(base64: string | undefined): Buffer | undefined {
  if (!base64) return undefined;
  const key = Buffer.from(base64, "base64");
  if (key.length !== 32) throw new Error("QX_SECRETS_KEY must be 32 bytes, base64-encoded");
  return key;
}

function requireKey(key: Buffer | undefined): Buffer {
  if (!key) throw permanentFailure("INTERNAL", "QX_SECRETS_KEY is not configured: pool secrets cannot be sealed or opened");
  return key;
}

export function sealSecrets(values: Record<string, string>, key: Buffer | undefined): Record<string, string> {
  const entries = Object.entries(values);
  if (entries.length === 0) return {};
  const k = requireKey(key);
  return Object.fromEntries(
    entries.map(([name, value]) => {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", k, iv);
      cipher.setAAD(Buffer.from(name));
      const sealed = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
      return [name, `${PREFIX}${iv.toString("base64")}:${sealed.toString("base64")}:${cipher.getAuthTag().toString("base64")}`];
    }),
  );
}

export function openSecrets(values: Record<string, string>, key: Buffer | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([name, value]) => {
      if (!value.startsWith(PREFIX)) throw permanentFailure("VALIDATION_FAILED", `pool secret ${name} is not sealed`);
      const [iv, sealed, tag] = value.slice(PREFIX.length).split(":");
      try {
        const decipher = createDecipheriv("aes-256-gcm", requireKey(key), Buffer.from(iv ?? "", "base64"));
        decipher.setAAD(Buffer.from(name));
        decipher.setAuthTag(Buffer.from(tag ?? "", "base64"));
        return [name, Buffer.concat([decipher.update(Buffer.from(sealed ?? "", "base64")), decipher.final()]).toString("utf8")];
      } catch (err) {
        if ((err as { type?: string }).type) throw err;
        throw permanentFailure("VALIDATION_FAILED", `pool secret ${name} cannot be opened: is QX_SECRETS_KEY the control plane's?`);
      }
    }),
  );
}
