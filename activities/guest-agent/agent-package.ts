import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { permanentFailure } from "../../common/errors";
import { runTool } from "../../common/exec";
import { AGENT_VERSION } from "../../common/agent-versions";

/**
 * Quantix guest agent packages (README "Guest agent"): `quantix-agent-<version>.tar` in a host's
 * package directory (QX_AGENT_PACKAGE_DIR), holding
 *   manifest.json  {"format": 1, "name": "quantix-guest-agent", "version": "1.1.0",
 *                   "files": [{"path": "install.sh", "sha256": "…"}, {"path": "files/agent", …}]}
 *   install.sh     run in the guest as `sh install.sh <new version directory>` from the unpacked
 *                  package: puts the version's files there (its `agent` launcher first of all)
 *   files/…        what install.sh installs
 * Every file in the archive but the manifest must be listed with its sha256; the checksums are
 * verified inside the guest before anything is installed.
 */
export interface AgentManifest {
  format: 1;
  name: "quantix-guest-agent";
  version: string;
  files: { path: string; sha256: string }[];
}

const SAFE_MEMBER = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

export function checkAgentVersion(version: string): string {
  if (!AGENT_VERSION.test(version)) throw permanentFailure("VALIDATION_FAILED", `agent version must be MAJOR.MINOR.PATCH (got ${JSON.stringify(version)})`);
  return version;
}

export function agentPackageFile(dir: string, version: string): string {
  return path.join(dir, `quantix-agent-${checkAgentVersion(version)}.tar`);
}

/** Reads and checks a package of the host's library: its manifest, its bytes and their sha256. */
export async function loadAgentPackage(dir: string, version: string): Promise<{ manifest: AgentManifest; bytes: Buffer; sha256: string }> {
  const file = agentPackageFile(dir, version);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    throw permanentFailure("NOT_FOUND", `no agent package ${version} on this host (${path.basename(file)})`);
  }
  const members = (await runTool("tar", ["-tf", file], { errorCode: "VALIDATION_FAILED" })).stdout.split("\n").filter((m) => m && !m.endsWith("/"));
  const manifest = JSON.parse((await runTool("tar", ["-xOf", file, "manifest.json"], { errorCode: "VALIDATION_FAILED" })).stdout) as AgentManifest;
  const listed = new Set(manifest.files?.map((f) => f.path));
  const problems = [
    manifest.format !== 1 && "format must be 1",
    manifest.name !== "quantix-guest-agent" && "name must be quantix-guest-agent",
    manifest.version !== version && `version ${manifest.version} in a file named for ${version}`,
    !listed.has("install.sh") && "no install.sh",
    ...(manifest.files ?? []).filter((f) => !SAFE_MEMBER.test(f.path) || !/^[0-9a-f]{64}$/.test(f.sha256)).map((f) => `bad entry ${JSON.stringify(f.path)}`),
    ...members.map((m) => m.replace(/^\.\//, "")).filter((m) => m !== "manifest.json" && !listed.has(m)).map((m) => `${m} is not in the manifest`),
  ].filter(Boolean);
  if (problems.length) throw permanentFailure("VALIDATION_FAILED", `agent package ${version}: ${problems.join("; ")}`);
  return { manifest, bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
}

/** The manifest's checksums in `sha256sum -c` form, for the check inside the guest. */
export function sha256sums(manifest: AgentManifest): string {
  return manifest.files.map((f) => `${f.sha256}  ${f.path}\n`).join("");
}

/**
 * Builds a package into `dir` (operators' tooling and the tests). `files` are the package's files
 * by path in the archive (install.sh among them); `checksums` may override what the manifest says
 * (a test's broken package).
 */
export async function buildAgentPackage(
  dir: string,
  version: string,
  files: Record<string, { content: Buffer | string; mode?: number }>,
  checksums: Record<string, string> = {},
): Promise<string> {
  const staging = await mkdtemp(path.join(os.tmpdir(), "quantix-agent-package-"));
  try {
    const entries: AgentManifest["files"] = [];
    for (const [member, file] of Object.entries(files)) {
      const target = path.join(staging, member);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, file.content);
      await chmod(target, file.mode ?? 0o644);
      entries.push({ path: member, sha256: checksums[member] ?? createHash("sha256").update(file.content).digest("hex") });
    }
    const manifest: AgentManifest = { format: 1, name: "quantix-guest-agent", version: checkAgentVersion(version), files: entries };
    await writeFile(path.join(staging, "manifest.json"), JSON.stringify(manifest, null, 2));
    await mkdir(dir, { recursive: true });
    const out = agentPackageFile(dir, version);
    await runTool("tar", ["-cf", `${out}.partial`, "-C", staging, "manifest.json", ...Object.keys(files)]);
    await rename(`${out}.partial`, out);
    return out;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
