import { Command, Option } from "commander";
import { CliContext } from "../context";
import { printTable } from "../output";
import { operationSucceeded, watchOperation } from "../operation-watch";
import { toInt } from "./vms";

const STATES = ["PENDING", "RUNNING", "COMPENSATING", "COMPLETED", "FAILED", "CANCELLED"];

export function operationCommand(): Command {
  const op = new Command("op").alias("operation").description("operations (every long action is one, with a Temporal workflow)");

  op.command("list")
    .description("list operations, newest first")
    .option("--target <id>", "only operations on this resource")
    .addOption(new Option("--state <state>", "only operations in this state").choices(STATES))
    .option("--limit <n>", "at most this many", toInt)
    .action(async (opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const query = new URLSearchParams();
      if (opts.target) query.set("targetId", opts.target);
      if (opts.state) query.set("state", opts.state);
      if (opts.limit) query.set("limit", String(opts.limit));
      const { items } = await ctx.api.request("GET", `/v1/operations?${query}`);
      ctx.show(items, (rows: any[]) =>
        printTable(rows, [
          { header: "ID", value: (o) => o.id },
          { header: "TYPE", value: (o) => o.type },
          { header: "TARGET", value: (o) => `${o.target.type} ${o.target.id}` },
          { header: "STATE", value: (o) => o.state },
          { header: "PROGRESS", value: (o) => `${o.progress}%` },
          { header: "ERROR", value: (o) => o.error?.code },
        ]),
      );
    });

  op.command("show <id>")
    .description("show an operation with every step and undo")
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      ctx.show(await ctx.api.request("GET", `/v1/operations/${encodeURIComponent(id)}`), (o: any) => {
        console.log(`${o.type} ${o.id}: ${o.state} ${o.progress}%${o.error ? ` ${o.error.code}: ${o.error.message}` : ""}`);
        if (o.links?.temporalUi) console.log(`Temporal UI: ${o.links.temporalUi}`);
        printTable(o.steps ?? [], [
          { header: "STEP", value: (s: any) => (s.kind === "UNDO" ? `undo ${s.name}` : s.name) },
          { header: "STATE", value: (s: any) => s.state },
          { header: "STARTED", value: (s: any) => s.startedAt },
          { header: "FINISHED", value: (s: any) => s.finishedAt },
          { header: "ERROR", value: (s: any) => (s.error ? `${s.error.code}: ${s.error.message}` : null) },
        ]);
      });
    });

  op.command("wait <id>")
    .description("follow an operation until it ends (exit 1 unless it COMPLETED)")
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const final = await watchOperation(ctx.api, id, { quiet: ctx.options.json });
      if (ctx.options.json) ctx.show(final, () => undefined);
      if (!operationSucceeded(final)) process.exitCode = 1;
    });

  op.command("cancel <id>")
    .description("cancel an operation: what it did is undone")
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      await ctx.api.request("POST", `/v1/operations/${encodeURIComponent(id)}/cancel`);
      if (!ctx.options.wait) return;
      const final = await watchOperation(ctx.api, id, { quiet: ctx.options.json });
      if (ctx.options.json) ctx.show(final, () => undefined);
      if (final.state !== "CANCELLED") process.exitCode = 1;
    });
  return op;
}
