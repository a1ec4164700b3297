/**
 * qx — the Quantix command line, a client of the REST API (every command is one or a few API
 * calls; mutations wait for their operation unless --no-wait). Parsing by commander, progress bars
 * by cli-progress.
 *
 *   QX_API_URL=http://127.0.0.1:8080 QX_API_TOKEN_FILE=.data/api-token npx tsx cli/qx.ts vm list
 *
 * Exit codes: 0 done; 1 an operation it waited for did not complete; 2 a usage error; 3 the API
 * refused the request (its problem code is printed); 4 the API could not be reached.
 */
import { Command, CommanderError } from "commander";
import { ApiProblem } from "./api-client";
import { hostCommand } from "./commands/hosts";
import { imageCommand } from "./commands/images";
import { operationCommand } from "./commands/operations";
import { poolCommand } from "./commands/pools";
import { vmCommand } from "./commands/vms";
import { volumeCommand } from "./commands/volumes";
import { CliContext } from "./context";
import { printJson } from "./output";
import { UsageError } from "./settings";

export function buildProgram(): Command {
  const program = new Command("qx")
    .description("Quantix Orchestrator command line")
    .option("--api <url>", "API base URL (default $QX_API_URL or http://127.0.0.1:8080)")
    .option("--token-file <file>", "file holding the API token (default $QX_API_TOKEN_FILE or .data/api-token; $QX_API_TOKEN wins)")
    .option("--json", "print JSON documents instead of tables")
    .option("--no-wait", "return once the operation is accepted instead of following it")
    .option("--idempotency-key <key>", "retry-safe key for the request (default: a new one per invocation)")
    .showHelpAfterError();

  for (const command of [vmCommand(), operationCommand(), hostCommand(), poolCommand(), volumeCommand(), imageCommand()]) {
    program.addCommand(command);
  }
  program
    .command("api <method> <path>")
    .description("call any API route (a JSON body with --data)")
    .option("--data <json>", "request body")
    .action(async (method: string, path: string, opts: { data?: string }, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      printJson(await ctx.api.request(method.toUpperCase(), path, opts.data === undefined ? {} : { body: JSON.parse(opts.data) }));
    });
  throwInsteadOfExiting(program);
  return program;
}

/** Usage errors surface as CommanderError in main() (exit 2), from every level of subcommand. */
function throwInsteadOfExiting(command: Command): void {
  command.exitOverride();
  for (const sub of command.commands) throwInsteadOfExiting(sub);
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // help/version, or a usage error commander printed
    if (err instanceof UsageError) {
      console.error(`qx: ${err.message}`);
      return 2;
    }
    if (err instanceof ApiProblem) {
      console.error(`qx: ${err.code} (HTTP ${err.status}): ${err.message}`);
      return 3;
    }
    if (err instanceof TypeError && /fetch failed/.test(err.message)) {
      console.error(`qx: cannot reach the API: ${(err.cause as Error | undefined)?.message ?? err.message}`);
      return 4;
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

