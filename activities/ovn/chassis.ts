/**
 * This host as an OVN chassis: the host worker configures the local Open vSwitch at start (the
 * chassis name is the host id; Southbound remote, Geneve encap IP, integration bridge, provider
 * bridge mappings from its config) and reports the chassis's health with its periodic report.
 * ovn-controller and ovs-vswitchd themselves are system services (scripts/services/ovn.sh here).
 * Every command runs with an argument array.
 */
import type { HostWorkerConfig } from "../../common/config";
import { runCommand } from "../../common/exec";

export interface ChassisConfig {
  /** The local OVS database (libvirt plugs guests into the one at unix:/run/openvswitch/db.sock). */
  ovsDb: string;
  /** The Southbound database ovn-controller connects to. */
  sbRemote: string;
  encapIp: string;
  /** The integration bridge VM NICs are plugged into. */
  bridge: string;
  /** "system" (kernel datapath) on a real host; "netdev" (userspace) where no openvswitch module loads. */
  datapathType: "system" | "netdev";
  /** ovn-controller's run directory (its pid file and control socket): /var/run/ovn on Debian. */
  ovnRundir: string;
  /** Provider networks: physical network name → the OVS bridge that reaches it. */
  bridgeMappings: Record<string, string>;
}

export interface ChassisHealth {
  healthy: boolean;
  /** Why not, when not. */
  message: string | null;
  /** The provider networks this chassis bridges to (ovn-bridge-mappings). */
  physicalNetworks: string[];
}

const OVS_TIMEOUT_S = "10";

/** The chassis settings of a host worker's config, or null when the host joins no network. */
export function chassisConfigOf(config: HostWorkerConfig): ChassisConfig | null {
  if (!config.ovnSbRemote) return null;
  return {
    ovsDb: config.ovsDb ?? "unix:/run/openvswitch/db.sock",
    sbRemote: config.ovnSbRemote,
    encapIp: config.ovnEncapIp ?? "127.0.0.1",
    bridge: config.ovnBridge ?? "br-int",
    datapathType: config.ovsDatapathType ?? "system",
    ovnRundir: config.ovnRundir ?? "/var/run/ovn",
    bridgeMappings: parseBridgeMappings(config.ovnBridgeMappings),
  };
}

export function parseBridgeMappings(text: string | undefined): Record<string, string> {
  if (!text) return {};
  return Object.fromEntries(
    text.split(",").filter(Boolean).map((pair) => {
      const [network, bridge] = pair.split(":");
      if (!network || !bridge) throw new Error(`bridge mapping ${JSON.stringify(pair)} is not NETWORK:BRIDGE`);
      return [network, bridge];
    }),
  );
}

export interface Chassis {
  readonly config: ChassisConfig;
  configure(): Promise<void>;
  health(): Promise<ChassisHealth>;
}

export function createChassis(hostId: string, config: ChassisConfig): Chassis {
  const vsctl = (...args: string[]) => runCommand("ovs-vsctl", [`--db=${config.ovsDb}`, `--timeout=${OVS_TIMEOUT_S}`, ...args], { timeoutMs: 15_000 });
  const mappings = Object.entries(config.bridgeMappings);
  const addBridge = (bridge: string, extra: string[] = []) => ["--", "--may-exist", "add-br", bridge, "--", "set", "Bridge", bridge, `datapath_type=${config.datapathType}`, ...extra];

  return {
    config,

    /** Idempotent: the same settings again change nothing. */
    async configure() {
      const ids = {
        "system-id": hostId,
        "ovn-remote": config.sbRemote,
        "ovn-encap-type": "geneve",
        "ovn-encap-ip": config.encapIp,
        "ovn-bridge": config.bridge,
        "ovn-bridge-datapath-type": config.datapathType,
        "ovn-bridge-mappings": mappings.map(([network, bridge]) => `${network}:${bridge}`).join(","),
      };
      await vsctl(
        "set",
        "Open_vSwitch",
        ".",
        ...Object.entries(ids).map(([key, value]) => `external_ids:${key}="${value}"`),
        // fail-mode=secure: until ovn-controller has written flows the bridge forwards nothing.
        ...addBridge(config.bridge, ["fail-mode=secure"]),
        ...mappings.flatMap(([, bridge]) => addBridge(bridge)),
      );
    },

    async health() {
      const physicalNetworks = mappings.map(([network]) => network);
      const unhealthy = (message: string): ChassisHealth => ({ healthy: false, message, physicalNetworks });
      try {
        const systemId = (await vsctl("--if-exists", "get", "Open_vSwitch", ".", "external_ids:system-id")).stdout.trim().replace(/^"|"$/g, "");
        if (systemId !== hostId) return unhealthy(`Open vSwitch system-id is ${JSON.stringify(systemId)}, not ${hostId}`);
        await vsctl("br-exists", config.bridge).catch(() => {
          throw new Error(`integration bridge ${config.bridge} is missing`);
        });
        const status = await runCommand("ovn-appctl", ["-t", "ovn-controller", "connection-status"], {
          env: { ...process.env, OVN_RUNDIR: config.ovnRundir },
          timeoutMs: 10_000,
        });
        if (status.stdout.trim() !== "connected") return unhealthy(`ovn-controller is ${status.stdout.trim()} to the Southbound database`);
        return { healthy: true, message: null, physicalNetworks };
      } catch (err) {
        return unhealthy((err as Error).message);
      }
    },
  };
}
