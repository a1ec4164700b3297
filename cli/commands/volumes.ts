import { Command, Option } from "commander";
import { CliContext } from "../context";
import { formatBytes, printTable } from "../output";
import { toInt } from "./vms";

export function volumeCommand(): Command {
  const volume = new Command("volume").description("volumes (disks) and their snapshots");
  const path = (id: string, rest = "") => `/v1/volumes/${encodeURIComponent(id)}${rest}`;

  volume.command("list").action(async (_opts, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    const { items } = await ctx.api.request("GET", "/v1/volumes");
    ctx.show(items, (rows: any[]) =>
      printTable(rows, [
        { header: "ID", value: (v) => v.id },
        { header: "NAME", value: (v) => v.name },
        { header: "POOL", value: (v) => v.poolId },
        { header: "SIZE", value: (v) => formatBytes(v.sizeBytes) },
        { header: "STATE", value: (v) => v.state },
        { header: "ATTACHED", value: (v) => (v.attachment ? `${v.attachment.vmId}:${v.attachment.targetDev}` : null) },
      ]),
    );
  });

  volume.command("show <id>").action(async (id: string, _opts, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    ctx.show(await ctx.api.request("GET", path(id)), (v) => console.log(JSON.stringify(v, null, 2)));
  });

  volume
    .command("create <name>")
    .requiredOption("--pool <id>", "storage pool")
    .requiredOption("--size <GiB>", "size in GiB", toInt)
    .action(async (name: string, opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const { accepted } = await ctx.mutate("POST", "/v1/volumes", { name, poolId: opts.pool, sizeGiB: opts.size });
      if (!ctx.options.json) console.log(accepted.volumeId);
    });

  volume.command("delete <id>").action(async (id: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("DELETE", path(id));
  });

  volume
    .command("resize <id>")
    .description("grow a volume (online when attached)")
    .requiredOption("--size <GiB>", "new size in GiB", toInt)
    .action(async (id: string, opts, cmd: Command) => {
      await CliContext.from(cmd).mutate("POST", path(id, "/resize"), { sizeGiB: opts.size });
    });

  volume
    .command("clone <id>")
    .requiredOption("--name <name>", "the new volume's name")
    .addOption(new Option("--mode <mode>", "linked (copy-on-write) or full copy").choices(["linked", "full"]).default("linked"))
    .action(async (id: string, opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const { accepted } = await ctx.mutate("POST", path(id, "/clone"), { name: opts.name, mode: opts.mode });
      if (!ctx.options.json) console.log(accepted.volumeId);
    });

  volume
    .command("attach <id>")
    .description("hot-plug a volume into a VM")
    .requiredOption("--vm <id>", "the VM")
    .action(async (id: string, opts, cmd: Command) => {
      await CliContext.from(cmd).mutate("POST", path(id, "/attach"), { vmId: opts.vm });
    });

  volume.command("detach <id>").action(async (id: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("POST", path(id, "/detach"));
  });

  const snapshot = volume.command("snapshot").description("a volume's snapshots");
  snapshot.command("list <volume>").action(async (id: string, _opts, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    const { items } = await ctx.api.request("GET", path(id, "/snapshots"));
    ctx.show(items, (rows: any[]) => printTable(rows, [{ header: "NAME", value: (s) => s.name }, { header: "CREATED", value: (s) => s.createdAt }]));
  });
  snapshot.command("create <volume> <name>").action(async (id: string, name: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("POST", path(id, "/snapshots"), { name });
  });
  snapshot.command("delete <volume> <name>").action(async (id: string, name: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("DELETE", path(id, `/snapshots/${encodeURIComponent(name)}`));
  });
  snapshot.command("revert <volume> <name>").action(async (id: string, name: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("POST", path(id, `/snapshots/${encodeURIComponent(name)}/revert`));
  });
  return volume;
}
