/**
 * What the API shows of an error message names resources, not host paths: where a host keeps its
 * pools, staged uploads or state is the operator's business, and the full message stays in the
 * workers' logs and the Temporal history. Messages are written to name resources (pool, volume,
 * image ids); this is the net under the ones that come from below (qemu-img, errno, backends):
 * every absolute path of two or more segments is cut to its last one, which for a pool's files is
 * the volume or image file name. API routes (/v1/...) in a message are kept.
 */
const ABSOLUTE_PATH = /(^|[\s'"`(=[,])\/(?!v1\/|internal\/)(?:[^\s'"`()[\],;:/]+\/)+([^\s'"`()[\],;:/]*)/g;

export function withoutHostPaths(message: string): string {
  return message.replace(ABSOLUTE_PATH, (_match, before: string, last: string) => `${before}…/${last}`);
}

/** An error as a resource or operation shows it: code and message, host paths cut. */
export function publicError(code: string | null, message: string | null): { code: string; message: string | null } | null {
  return code ? { code, message: message === null ? null : withoutHostPaths(message) } : null;
}
