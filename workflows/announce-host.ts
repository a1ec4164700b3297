/**
 * announceHost — a host worker, at start, tells the control plane who it is (id, CPU, memory,
 * libvirt URI, pools). One step, no undo: recording facts is idempotent. Registration with a
 * token and a host approval flow replace this later.
 */
import { database } from "./database-activities";
import type { HostFacts } from "../activities/database/hosts";

export async function announceHost(facts: HostFacts): Promise<void> {
  await database.hostAnnounced(facts);
}
