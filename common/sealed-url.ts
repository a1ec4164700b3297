import { openSecrets, sealSecrets } from "./sealed-secrets";

/**
 * A URL whose secret parts travel sealed. The user info (`user:password@`) and the query (signed
 * URLs, tokens: an upload's one-time token too) of a download URL are credentials: they are kept
 * and passed apart from the rest, sealed like pool secrets (common/sealed-secrets.ts), and joined
 * back only in the memory of the host that fetches. The rest — origin and path — is what rows,
 * operation records, workflow histories, responses, logs and errors may show.
 */
export interface SealedUrl {
  /** Origin and path only. */
  url: string;
  /** `userinfo` and `query`, when the URL had them, each sealed. */
  sealed: Record<string, string>;
}

export interface UrlSecrets {
  userinfo?: string;
  query?: string;
}

/** Origin and path: what may be shown of a URL. */
export function publicPartOf(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** Splits a URL into what may be shown and what may not (its fragment is never sent, so it goes). */
export function splitUrl(raw: string): { url: string; secrets: UrlSecrets } {
  const url = new URL(raw);
  const secrets: UrlSecrets = {};
  if (url.username || url.password) secrets.userinfo = `${url.username}${url.password ? `:${url.password}` : ""}`;
  if (url.search.length > 1) secrets.query = url.search.slice(1);
  return { url: publicPartOf(url), secrets };
}

export function sealUrlSecrets(secrets: UrlSecrets, key: Buffer | undefined): Record<string, string> {
  return sealSecrets({ ...secrets }, key);
}

export function openUrlSecrets(sealed: Record<string, string>, key: Buffer | undefined): UrlSecrets {
  const { userinfo, query } = openSecrets(sealed, key);
  return { ...(userinfo !== undefined ? { userinfo } : {}), ...(query !== undefined ? { query } : {}) };
}

/** The whole URL again, from its public part and its opened secrets: only where it is fetched. */
export function joinUrl(publicUrl: string, secrets: UrlSecrets): string {
  const url = new URL(publicUrl);
  if (secrets.userinfo !== undefined) {
    const colon = secrets.userinfo.indexOf(":");
    // Already percent-encoded as the URL had them: assigned as they are.
    url.username = colon < 0 ? secrets.userinfo : secrets.userinfo.slice(0, colon);
    if (colon >= 0) url.password = secrets.userinfo.slice(colon + 1);
  }
  if (secrets.query !== undefined) url.search = `?${secrets.query}`;
  return url.toString();
}

export function openSealedUrl(sealedUrl: SealedUrl, key: Buffer | undefined): string {
  return joinUrl(sealedUrl.url, openUrlSecrets(sealedUrl.sealed, key));
}
