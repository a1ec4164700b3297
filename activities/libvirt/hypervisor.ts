/**
 * What the host worker needs from a hypervisor, whatever reaches it: the @unraid/libvirt binding
 * for what it covers and virsh (argument arrays) for what it lacks, behind this one interface.
 */
export type DomainState = "running" | "paused" | "shutdown" | "shutoff" | "crashed" | "suspended" | "unknown";

export interface NodeFacts {
  hostname: string;
  cpus: number;
  memoryMiB: number;
}

export interface Hypervisor {
  readonly uri: string;
  nodeFacts(): Promise<NodeFacts>;
  /** Defines or redefines (same name and UUID) a persistent domain. */
  defineDomain(xml: string): Promise<void>;
  /** Names of the running domains (all of them: callers filter their own). */
  runningDomains(): Promise<string[]>;
  /** Null when no domain of that name is defined. */
  domainState(name: string): Promise<DomainState | null>;
  domainXml(name: string): Promise<string>;
  startDomain(name: string): Promise<void>;
  /** Asks the guest to power off (through its agent when connected, else ACPI); returns at once. */
  shutdownDomain(name: string): Promise<void>;
  /** Asks the guest to reboot (through its agent when connected, else ACPI); returns at once. */
  rebootDomain(name: string): Promise<void>;
  /** Pulls the plug. */
  destroyDomain(name: string): Promise<void>;
  undefineDomain(name: string): Promise<void>;
  /** Adds a device (XML) to the definition, and to the running guest when `live`. */
  attachDevice(name: string, deviceXml: string, live: boolean): Promise<void>;
  /** Removes a device (XML) from the definition, and from the running guest when `live`. */
  detachDevice(name: string, deviceXml: string, live: boolean): Promise<void>;
  /** Grows a running guest's disk (qemu resizes the image it holds open, and tells the guest). */
  blockResize(name: string, targetDev: string, sizeBytes: number): Promise<void>;
  close(): Promise<void>;
}

/** libvirt's "no such domain", the answer every idempotent undo treats as success. */
export function isDomainNotFound(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /Domain not found|no domain with matching|failed to get domain/i.test(message);
}
