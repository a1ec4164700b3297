import { createHmac, hkdfSync } from "node:crypto";

/**
 * The Idempotency-Key request hash. It covers every field of a request, secret ones included (a
 * retry with another password is another request: 422, not a replay of the first), yet the stored
 * value must reveal nothing about them: a plain SHA-256 of a short password is a dictionary lookup.
 * So it is an HMAC-SHA-256 under a key derived (HKDF, its own label) from the control plane's
 * QX_SECRETS_KEY, of the request in canonical JSON (object keys sorted: the same body with its keys
 * in another order is the same request).
 */
export function requestHashKey(secretsKey: Buffer): Buffer {
  return Buffer.from(hkdfSync("sha256", secretsKey, Buffer.alloc(0), "quantix idempotency request hash v1", 32));
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

export function keyedRequestHash(key: Buffer, request: unknown): string {
  return createHmac("sha256", key).update(canonicalJson(request)).digest("hex");
}
