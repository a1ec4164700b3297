import { Command } from "commander";
import { CliContext } from "../context";
import { printTable } from "../output";

export function hostCommand(): Command {
  const host = new Command("host").description("hypervisor hosts");
  host
    .command("list")
    .description("list hosts with their capacity and allocation")
    .action(async (_opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const { items } = await ctx.api.request("GET", "/v1/hosts");
      ctx.show(items, (rows: any[]) =>
        printTable(rows, [
          { header: "ID", value: (h) => h.id },
          { header: "HOSTNAME", value: (h) => h.hostname },
          { header: "STATE", value: (h) => h.state },
          { header: "VCPUS (ALLOC/TOTAL)", value: (h) => `${h.allocated?.vcpus ?? "-"}/${h.cpuCount}` },
          { header: "MEMORY MiB (ALLOC/TOTAL)", value: (h) => `${h.allocated?.memoryMiB ?? "-"}/${h.memoryMiB}` },
          { header: "POOLS", value: (h) => (h.pools ?? []).map((p: any) => `${p.poolId ?? p.id}:${p.health}`).join(",") },
        ]),
      );
    });
  return host;
}
