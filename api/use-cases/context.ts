import type { PrismaClient } from "@prisma/client";
import type { Client } from "@temporalio/client";
import type { ControlPlaneConfig } from "../../common/config";
import type { TemporalProbe } from "../temporal-probe";

/** What every use case works with. */
export interface ApiContext {
  prisma: PrismaClient;
  temporal: Client;
  /** Whether Temporal answers now (checked in the background): mutating requests need it. */
  temporalProbe: TemporalProbe;
  config: ControlPlaneConfig;
  /** The API's base URL as hosts reach it (QX_API_PUBLIC_URL, else where it listens): staged uploads are fetched from it. */
  publicUrl: string;
  /** QX_SECRETS_KEY: seals secrets the control plane keeps (URL credentials) and keys request hashes. */
  secretsKey: Buffer;
}

/** The host-call timeouts every operation's workflow is started with. */
export function hostTimeouts(ctx: ApiContext) {
  return { hostScheduleToStartMs: ctx.config.hostScheduleToStartMs, undoDeadlineMs: ctx.config.undoDeadlineMs };
}
