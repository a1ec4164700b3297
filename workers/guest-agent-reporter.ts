/**
 * The host worker's guest-agent status reporter: what each of this host's guests' agents says
 * (connected since when, versions, OS, hostname, interfaces and IPs) goes to the control plane's
 * `recordGuestAgents` workflow of this host as a signal (host workers hold no database
 * credentials), and a control-plane activity writes it where GET /v1/vms/:id reads it — the API
 * never waits for an agent. Refreshed when libvirt says an agent connected or left (`virsh event
 * --event agent-lifecycle`, at once) and every QX_AGENT_STATUS_INTERVAL_MS (IPs change without an
 * event); only what changed is sent. Kept apart from the pool reports and host heartbeats.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Client } from "@temporalio/client";
import { XMLParser } from "fast-xml-parser";
import { QUANTIX_METADATA_NS } from "../activities/libvirt/domain-xml";
import type { Hypervisor } from "../activities/libvirt/hypervisor";
import type { GuestAgent } from "../activities/guest-agent/agent-client";
import { disconnectedStatus, readGuestAgentStatus, type GuestAgentStatus } from "../activities/guest-agent/status";
import type { GuestAgentReport, ReportedGuestAgent } from "../activities/database/guest-agents";
import { DEFAULT_AGENT_STATUS_INTERVAL_MS, type HostWorkerConfig } from "../common/config";
import { recordGuestAgentsWorkflowId } from "../common/operations";

const DOMAIN_PREFIX = "qx-";
/** Agents asked at once: each ask is a few virsh calls, and a TCG guest answers slowly. */
const CONCURRENT_ASKS = 4;

export interface GuestAgentReporter {
  /** Refreshes every guest now and sends what changed (tests use it; the timer does the same). */
  refresh(): Promise<void>;
  stop(): Promise<void>;
}

interface Known {
  status: GuestAgentStatus;
  /** When `connected` last changed, as this host saw it. */
  since: string;
  sent: string;
}

export function startGuestAgentReporter(
  client: Client,
  deps: { config: HostWorkerConfig; hypervisor: Hypervisor; agent: GuestAgent },
): GuestAgentReporter {
  const { config, hypervisor, agent } = deps;
  const interval = config.agentStatusIntervalMs ?? DEFAULT_AGENT_STATUS_INTERVAL_MS;
  const known = new Map<string, Known>();
  const owned = new Map<string, boolean>();
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" });
  let chain: Promise<void> = Promise.resolve();
  let stopped = false;

  /** Our own domains only: qx- names whose metadata names this installation (domain-xml.ts). */
  async function isOurs(name: string): Promise<boolean> {
    const cached = owned.get(name);
    if (cached !== undefined) return cached;
    const xml = parser.parse(await hypervisor.domainXml(name));
    const meta = xml?.domain?.metadata?.["quantix:domain"];
    const ours = meta?.["xmlns:quantix"] === QUANTIX_METADATA_NS && meta?.installation === config.controlPlaneQueue;
    owned.set(name, ours);
    return ours;
  }

  async function ask(vmId: string): Promise<GuestAgentStatus> {
    const status = await readGuestAgentStatus(agent, vmId).catch(() => disconnectedStatus(vmId));
    const before = known.get(vmId)?.status;
    // A frozen agent only says it is frozen: keep what it said before.
    if (status.connected && status.filesystems === "frozen" && before?.connected) {
      return { ...before, filesystems: "frozen", qemuGaVersion: status.qemuGaVersion };
    }
    return status;
  }

  /** Asks the given VMs (all running ones of ours when undefined) and sends what changed. */
  async function sweep(only?: string[]): Promise<void> {
    const running = new Set<string>();
    for (const name of await hypervisor.runningDomains()) {
      if (name.startsWith(DOMAIN_PREFIX) && (await isOurs(name).catch(() => false))) running.add(name.slice(DOMAIN_PREFIX.length));
    }
    const targets = only ?? [...new Set([...running, ...known.keys()])];
    const statuses: GuestAgentStatus[] = [];
    for (let i = 0; i < targets.length; i += CONCURRENT_ASKS) {
      statuses.push(
        ...(await Promise.all(targets.slice(i, i + CONCURRENT_ASKS).map((vmId) => (running.has(vmId) ? ask(vmId) : Promise.resolve(disconnectedStatus(vmId)))))),
      );
    }
    const now = new Date().toISOString();
    const changed: ReportedGuestAgent[] = [];
    for (const status of statuses) {
      const before = known.get(status.vmId);
      const since = before && before.status.connected === status.connected ? before.since : now;
      const sent = JSON.stringify(status);
      if (before?.sent !== sent) changed.push({ ...status, since, observedAt: now });
      // A stopped or deleted VM is reported once as disconnected, then forgotten.
      if (!running.has(status.vmId)) known.delete(status.vmId);
      else known.set(status.vmId, { status, since, sent });
    }
    if (changed.length === 0) return;
    const report: GuestAgentReport = { hostId: config.hostId, agents: changed };
    try {
      await client.workflow.signalWithStart("recordGuestAgents", {
        taskQueue: config.controlPlaneQueue,
        workflowId: recordGuestAgentsWorkflowId(config.hostId),
        args: [config.hostId],
        signal: "guestAgentReport",
        signalArgs: [report],
      });
    } catch (err) {
      // Not sent: forget what was sent for these, so the next sweep sends them again.
      for (const c of changed) {
        const k = known.get(c.vmId);
        if (k) k.sent = "";
      }
      throw err;
    }
  }

  const queue = (only?: string[]) => {
    chain = chain.then(() => (stopped ? undefined : sweep(only).catch((err: unknown) => console.error(`[host ${config.hostId}] guest agent report failed:`, err))));
    return chain;
  };

  // libvirt's agent-lifecycle events: a guest's agent connected or went away.
  let events: ChildProcess | undefined;
  const watchEvents = () => {
    if (stopped) return;
    events = spawn("virsh", ["-c", config.libvirtUri, "-q", "event", "--all", "--loop", "--event", "agent-lifecycle"], { stdio: ["ignore", "pipe", "ignore"] });
    createInterface({ input: events.stdout! }).on("line", (line) => {
      const vmId = new RegExp(`for domain '${DOMAIN_PREFIX}([0-9a-f-]{36})'`).exec(line)?.[1];
      if (vmId) void queue([vmId]);
    });
    // libvirtd restarted: watch again, and ask everyone (events were missed).
    events.on("exit", () => {
      if (stopped) return;
      setTimeout(() => {
        watchEvents();
        void queue();
      }, 1000);
    });
  };
  watchEvents();

  void queue();
  const timer = setInterval(() => void queue(), interval);
  return {
    refresh: () => queue(),
    async stop() {
      stopped = true;
      clearInterval(timer);
      events?.kill("SIGTERM");
      await chain;
    },
  };
}
