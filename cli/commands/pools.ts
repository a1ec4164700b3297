import { Command, InvalidArgumentError, Option } from "commander";
import { CliContext } from "../context";
import { formatBytes, printTable } from "../output";
import { readStdin } from "../stdin";
import { collect } from "./vms";

export function poolCommand(): Command {
  const pool = new Command("pool").description("storage pools (datastores)");

  pool.command("list").action(async (_opts, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    const { items } = await ctx.api.request("GET", "/v1/storage/pools");
    ctx.show(items, (rows: any[]) =>
      printTable(rows, [
        { header: "ID", value: (p) => p.id },
        { header: "NAME", value: (p) => p.name },
        { header: "KIND", value: (p) => p.kind },
        { header: "HEALTH", value: (p) => p.status?.health },
        { header: "FREE", value: (p) => formatBytes(p.status?.freeBytes) },
        { header: "CAPACITY", value: (p) => formatBytes(p.status?.capacityBytes) },
        { header: "HOSTS", value: (p) => (p.hosts ?? []).map((h: any) => h.hostId).join(",") },
      ]),
    );
  });

  pool.command("show <id>").action(async (id: string, _opts, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    ctx.show(await ctx.api.request("GET", `/v1/storage/pools/${encodeURIComponent(id)}`), (p) => console.log(JSON.stringify(p, null, 2)));
  });

  pool
    .command("create <name>")
    .description("create a pool and initialise it on hosts")
    .addOption(new Option("--kind <kind>", "backend").choices(["dir", "nfs", "rbd", "iscsi"]).makeOptionMandatory())
    .requiredOption("--config <json>", 'backend configuration, e.g. \'{"path":"/srv/quantix/fast"}\'', parseJson)
    .option("--host <id>", "a host to initialise the pool on (repeatable)", collect, [])
    .addOption(new Option("--secrets-stdin", "read the pool's secrets (a JSON object) from standard input, never from arguments"))
    .action(async (name: string, opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const secrets = opts.secretsStdin ? parseJson(await readStdin()) : undefined;
      const { accepted } = await ctx.mutate("POST", "/v1/storage/pools", { name, kind: opts.kind, config: opts.config, hostIds: opts.host, ...(secrets ? { secrets } : {}) });
      if (!ctx.options.json) console.log(accepted.poolId);
    });

  pool.command("delete <id>").action(async (id: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("DELETE", `/v1/storage/pools/${encodeURIComponent(id)}`);
  });

  pool.command("assign <pool> <host>").description("initialise a pool on one more host").action(async (poolId: string, hostId: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("POST", `/v1/storage/pools/${encodeURIComponent(poolId)}/hosts/${encodeURIComponent(hostId)}`);
  });

  pool.command("unassign <pool> <host>").action(async (poolId: string, hostId: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("DELETE", `/v1/storage/pools/${encodeURIComponent(poolId)}/hosts/${encodeURIComponent(hostId)}`);
  });

  pool
    .command("files <pool> [path]")
    .description("browse a pool's files (confined to the pool)")
    .action(async (poolId: string, dir: string | undefined, _opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const listing = await ctx.api.request("GET", `/v1/storage/pools/${encodeURIComponent(poolId)}/files?${new URLSearchParams({ path: dir ?? "" })}`);
      ctx.show(listing, (l: any) =>
        printTable(l.items, [
          { header: "NAME", value: (f: any) => f.name },
          { header: "TYPE", value: (f: any) => f.type },
          { header: "SIZE", value: (f: any) => formatBytes(f.sizeBytes) },
          { header: "MODIFIED", value: (f: any) => f.modifiedAt },
        ]),
      );
    });
  return pool;
}

export function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError("not valid JSON");
  }
}
