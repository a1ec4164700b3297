import { ApplicationFailure } from "@temporalio/common";
import type { GuestAgent } from "./agent-client";
import { readSmallGuestFile } from "./guest-files";

/**
 * What a VM's guest agent says about its guest. "Agent version" is two things: qemu-ga's compiled
 * version (guest-info, e.g. 7.2.22) and the version of the Quantix agent package running it
 * (`packageVersion`: what upgradeAgent installs and compares; null for a guest whose agent was not
 * installed from one of our packages). See README "Guest agent".
 */
export interface GuestAgentStatus {
  vmId: string;
  connected: boolean;
  qemuGaVersion: string | null;
  packageVersion: string | null;
  os: { name: string; version: string | null; id: string | null; kernelRelease: string | null } | null;
  hostname: string | null;
  interfaces: GuestInterface[];
  /** qemu-ga's freeze state; while frozen the agent answers only ping, info and freeze commands. */
  filesystems: "frozen" | "thawed" | null;
}

export interface GuestInterface {
  name: string;
  mac: string | null;
  addresses: { type: "ipv4" | "ipv6"; address: string; prefix: number }[];
}

/** Written by the guest's agent supervisor: the package version of the agent it started last. */
export const RUNNING_PACKAGE_VERSION_FILE = "/run/quantix-agent/running";

const STATUS_CALL = { timeoutSeconds: 5 };

interface OsInfo {
  name?: string;
  version?: string;
  id?: string;
  "kernel-release"?: string;
}

interface AgentInterface {
  name: string;
  "hardware-address"?: string;
  "ip-addresses"?: { "ip-address-type": "ipv4" | "ipv6"; "ip-address": string; prefix: number }[];
}

export function disconnectedStatus(vmId: string): GuestAgentStatus {
  return { vmId, connected: false, qemuGaVersion: null, packageVersion: null, os: null, hostname: null, interfaces: [], filesystems: null };
}

function isUnreachable(err: unknown): boolean {
  return err instanceof ApplicationFailure && ["AGENT_NOT_CONNECTED", "AGENT_TIMEOUT", "DOMAIN_NOT_RUNNING", "NOT_FOUND"].includes(err.type ?? "");
}

/**
 * Asks the agent everything the API shows. An agent that does not answer is "not connected"; a
 * frozen one answers only guest-info and the freeze status, so the rest stays null (the reporter
 * keeps what it knew).
 */
export async function readGuestAgentStatus(agent: GuestAgent, vmId: string): Promise<GuestAgentStatus> {
  let version: string;
  try {
    version = (await agent.call<{ version: string }>(vmId, "guest-info", undefined, STATUS_CALL)).version;
  } catch (err) {
    if (isUnreachable(err)) return disconnectedStatus(vmId);
    throw err;
  }
  const filesystems = await agent.call<"frozen" | "thawed">(vmId, "guest-fsfreeze-status", undefined, STATUS_CALL);
  const status: GuestAgentStatus = { ...disconnectedStatus(vmId), connected: true, qemuGaVersion: version, filesystems };
  if (filesystems === "frozen") return status;
  const [os, host, interfaces, running] = await Promise.all([
    agent.call<OsInfo>(vmId, "guest-get-osinfo", undefined, STATUS_CALL),
    agent.call<{ "host-name": string }>(vmId, "guest-get-host-name", undefined, STATUS_CALL),
    agent.call<AgentInterface[]>(vmId, "guest-network-get-interfaces", undefined, STATUS_CALL),
    readSmallGuestFile(agent, vmId, RUNNING_PACKAGE_VERSION_FILE).catch(() => null),
  ]);
  return {
    ...status,
    packageVersion: running?.trim() || null,
    os: { name: os.name ?? "unknown", version: os.version ?? null, id: os.id ?? null, kernelRelease: os["kernel-release"] ?? null },
    hostname: host["host-name"],
    interfaces: interfaces.map((i) => ({
      name: i.name,
      mac: i["hardware-address"] ?? null,
      addresses: (i["ip-addresses"] ?? []).map((a) => ({ type: a["ip-address-type"], address: a["ip-address"], prefix: a.prefix })),
    })),
  };
}
