import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

/**
 * Where the API is and the token to call it with. The token comes from the environment or a file,
 * never from the command line: process arguments are visible to every user of the machine (ps).
 */
export interface CliSettings {
  apiUrl: string;
  token: string;
}

const repoRoot = path.resolve(__dirname, "..");

export function resolveSettings(options: { api?: string; tokenFile?: string }): CliSettings {
  const apiUrl = options.api ?? process.env.QX_API_URL ?? "http://127.0.0.1:8080";
  const fromEnv = process.env.QX_API_TOKEN;
  const tokenFile = options.tokenFile ?? process.env.QX_API_TOKEN_FILE ?? path.join(repoRoot, ".data/api-token");
  if (fromEnv) return { apiUrl, token: fromEnv };
  if (!existsSync(tokenFile)) {
    throw new UsageError(`no API token: set QX_API_TOKEN, or QX_API_TOKEN_FILE / --token-file to a file holding it (looked for ${tokenFile})`);
  }
  return { apiUrl, token: readFileSync(tokenFile, "utf8").trim() };
}

/** A mistake in how the CLI was called (exit code 2). */
export class UsageError extends Error {}
