/**
 * Quantix guest agent package versions: MAJOR.MINOR.PATCH, compared numerically. Shared by the
 * upgrade workflow (downgrade refusal) and the host's package library; pure, so workflows may use it.
 */
export const AGENT_VERSION = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/;

/** Negative, zero or positive as a is older than, the same as or newer than b. */
export function compareAgentVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
