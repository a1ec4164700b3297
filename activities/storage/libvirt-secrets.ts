import { XMLBuilder } from "fast-xml-parser";
import { CommandError, runCommand, runTool } from "../../common/exec";
import { permanentFailure, transientFailure } from "../../common/errors";
import { withPrivateFile } from "./private-file";

/**
 * libvirt secrets that network disks reference (<auth><secret .../></auth>): the Ceph key of an
 * RBD pool, the CHAP password of an iSCSI target. Values reach virsh through a private temp file
 * removed right after, never argv. Secrets are private: libvirt never hands the value back out.
 */

export type SecretUsage = { type: "ceph"; name: string } | { type: "iscsi"; target: string };

export interface SecretSpec {
  libvirtUri: string;
  usage: SecretUsage;
  /** Fixed by the pool's configuration (Ceph); when absent libvirt picks one. */
  uuid?: string;
}

const VIRSH_TIMEOUT_MS = 30_000;
const xml = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@_" });

function usageId(usage: SecretUsage): string {
  return usage.type === "ceph" ? usage.name : usage.target;
}

function virsh(libvirtUri: string, args: string[], redact: string[] = []) {
  return runTool("virsh", ["-c", libvirtUri, ...args], { redact, timeoutMs: VIRSH_TIMEOUT_MS, errorCode: "HYPERVISOR_ERROR" });
}

/** The uuid of the secret with this usage, if libvirt has one. */
export async function findSecret(libvirtUri: string, usage: SecretUsage): Promise<string | undefined> {
  const { stdout } = await virsh(libvirtUri, ["secret-list"]);
  // Rows look like " 6b38fdc8-…-0f766e   ceph client.qx" under a header and a dashed rule.
  for (const line of stdout.split("\n")) {
    const row = /^\s*([0-9a-f-]{36})\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (row && row[2] === usage.type && row[3] === usageId(usage)) return row[1];
  }
  return undefined;
}

/**
 * Defines the secret (or finds the existing one) and sets its value. Idempotent: redefining the
 * same uuid with the same usage is accepted by libvirt, and setting the same value twice is harmless.
 * `encoding` says how virsh reads `value`: base64 text (a Ceph key) or plain bytes (a password).
 */
export async function ensureSecret(spec: SecretSpec, value: string, encoding: "base64" | "plain"): Promise<string> {
  let uuid = spec.uuid ?? (await findSecret(spec.libvirtUri, spec.usage));
  if (uuid === undefined || spec.uuid !== undefined) {
    const usage =
      spec.usage.type === "ceph"
        ? { "@_type": "ceph", name: spec.usage.name }
        : { "@_type": "iscsi", target: spec.usage.target };
    const doc = { secret: { "@_ephemeral": "no", "@_private": "yes", ...(uuid ? { uuid } : {}), usage } };
    const { stdout } = await withPrivateFile(xml.build(doc) as string, (file) => virsh(spec.libvirtUri, ["secret-define", file]));
    uuid = /Secret ([0-9a-f-]{36}) created/.exec(stdout)?.[1];
    if (!uuid) throw permanentFailure("HYPERVISOR_ERROR", `virsh secret-define printed no uuid: ${stdout.trim()}`);
  }
  const plain = encoding === "plain" ? ["--plain"] : [];
  const secretUuid = uuid;
  await withPrivateFile(value, (file) =>
    virsh(spec.libvirtUri, ["secret-set-value", "--secret", secretUuid, "--file", file, ...plain], [value]),
  );
  return uuid;
}

/** Success when the secret is already gone. */
export async function removeSecret(libvirtUri: string, uuid: string): Promise<void> {
  try {
    await runCommand("virsh", ["-c", libvirtUri, "secret-undefine", uuid], { timeoutMs: VIRSH_TIMEOUT_MS });
  } catch (err) {
    if (!(err instanceof CommandError)) throw err;
    if (/Secret not found/.test(err.stderr)) return;
    throw err.timedOut ? transientFailure("COMMAND_TIMEOUT", err.message) : permanentFailure("HYPERVISOR_ERROR", err.message);
  }
}
