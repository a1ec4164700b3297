import { z } from "zod";
import { AGENT_VERSION } from "../common/agent-versions";

/** Request schemas of the guest agent routes (api/routes/guest-agent.ts). */

export const MAX_EXEC_OUTPUT_BYTES = 256 * 1024;
const DEFAULT_EXEC_OUTPUT_BYTES = 64 * 1024;

/** A path as the guest sees it: absolute, never resolved on the host. */
export const guestPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith("/") && !p.includes("\0"), "must be an absolute path in the guest");

export const agentExecBody = z
  .object({
    /** A program in the guest, run with `args`... */
    path: guestPath.optional(),
    /** ...or a script for the guest's /bin/sh (`args` become $1, $2...). */
    script: z.string().min(1).max(32 * 1024).optional(),
    args: z.array(z.string().max(4096)).max(64).default([]),
    stdin: z.string().max(32 * 1024).optional(),
    timeoutSeconds: z.number().int().min(1).max(24 * 3600).default(60),
    maxOutputBytes: z.number().int().min(1).max(MAX_EXEC_OUTPUT_BYTES).default(DEFAULT_EXEC_OUTPUT_BYTES),
  })
  .strict()
  .refine((b) => (b.path === undefined) !== (b.script === undefined), "give exactly one of path and script");

export type AgentExecBody = z.infer<typeof agentExecBody>;

export const agentUpgradeBody = z
  .object({
    /** A package version in the hosts' agent package libraries (MAJOR.MINOR.PATCH). */
    version: z.string().regex(AGENT_VERSION, "MAJOR.MINOR.PATCH"),
    /** Install an older version than the one running (refused otherwise). */
    allowDowngrade: z.boolean().default(false),
  })
  .strict();

export type AgentUpgradeBody = z.infer<typeof agentUpgradeBody>;

export const fleetUpgradeBody = z
  .object({
    /** Which VMs: by id, by host, by name prefix (criteria combine), or all of them. */
    selector: z
      .object({
        vmIds: z.array(z.string().uuid()).min(1).max(1000).optional(),
        hostId: z.string().min(1).max(63).optional(),
        namePrefix: z.string().min(1).max(63).optional(),
        all: z.literal(true).optional(),
      })
      .strict()
      .refine((s) => Object.keys(s).length > 0, "name the VMs (vmIds, hostId, namePrefix) or say all: true"),
    version: z.string().regex(AGENT_VERSION, "MAJOR.MINOR.PATCH"),
    allowDowngrade: z.boolean().default(false),
    maxParallel: z.number().int().min(1).max(100).default(1),
    maxFailures: z.number().int().min(0).default(0),
  })
  .strict();

export type FleetUpgradeBody = z.infer<typeof fleetUpgradeBody>;
