/**
 * The REST API process: starts workflows and reads state from PostgreSQL.
 *
 *   DATABASE_URL=... QX_API_TOKENS=secret=alice QX_API_PORT=8080 tsx api/server.ts
 */
import type { Server } from "node:http";
import { Client, Connection } from "@temporalio/client";
import { controlPlaneConfigFromEnv, DEFAULT_STAGING_SWEEP_INTERVAL_MS, type ControlPlaneConfig } from "../common/config";
import { createPrismaClient } from "../common/database";
import { createApp } from "./app";
import { parseApiTokens } from "./auth";
import { parseSecretsKey } from "../common/sealed-secrets";
import { startStagingSweeper, sweepStagedUploads } from "./use-cases/image-uploads";
import { startTemporalProbe } from "./temporal-probe";

export interface RunningApi {
  url: string;
  stop(): Promise<void>;
}

export interface ApiOptions {
  databaseUrl: string;
  config: ControlPlaneConfig;
  tokens: Map<string, string>;
  port: number;
  host?: string;
}

/** Starts the API in this process (jest runs it in-process against real PostgreSQL and Temporal). */
export async function startApi(options: ApiOptions): Promise<RunningApi> {
  const secretsKey = parseSecretsKey(options.config.secretsKey);
  // Idempotency hashes and sealed URL credentials depend on it: an API without it would accept
  // requests it cannot keep safely, so it does not start.
  if (!secretsKey) throw new Error("QX_SECRETS_KEY is required by the API (32 random bytes, base64)");
  const prisma = createPrismaClient(options.databaseUrl);
  // Lazy: the API starts, reads and answers /healthz while Temporal is down (mutating calls get
  // 503 and /readyz says why); it connects as soon as Temporal answers.
  const connection = Connection.lazy({ address: options.config.temporalAddress });
  const temporal = new Client({ connection, namespace: options.config.temporalNamespace });
  const temporalProbe = await startTemporalProbe(connection);
  // The public URL is known once the port is (port 0 picks one): filled in right after listen.
  const ctx = { prisma, temporal, temporalProbe, config: options.config, publicUrl: options.config.apiPublicUrl ?? "", secretsKey };
  const app = createApp(ctx, options.tokens);
  // Express 5 calls back with the error (e.g. the port is taken): the API must not say it listens.
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port, options.host ?? "127.0.0.1", (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `http://${options.host ?? "127.0.0.1"}:${port}`;
  ctx.publicUrl ||= url;
  await sweepStagedUploads(ctx);
  const sweeper = startStagingSweeper(ctx, options.config.stagingSweepIntervalMs ?? DEFAULT_STAGING_SWEEP_INTERVAL_MS);
  return {
    url,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await sweeper.stop();
      temporalProbe.stop();
      await connection.close();
      await prisma.$disconnect();
    },
  };
}

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error("DATABASE_URL is required");
  const tokens = parseApiTokens(process.env.QX_API_TOKENS ?? "");
  if (tokens.size === 0) throw new Error("QX_API_TOKENS is required (token=user[,token=user...])");
  const api = await startApi({
    databaseUrl,
    config: controlPlaneConfigFromEnv(),
    tokens,
    port: Number(process.env.QX_API_PORT ?? 8080),
    host: process.env.QX_API_HOST ?? "127.0.0.1",
  });
  console.log(`API listening on ${api.url}`);
  const shutdown = () => void api.stop().then(() => process.exit(0));
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
