import { createReadStream, statSync } from "node:fs";
import { Readable } from "node:stream";
import { Command, Option } from "commander";
import { CliContext } from "../context";
import { formatBytes, printTable } from "../output";
import { readStdin } from "../stdin";
import { UsageError } from "../settings";

export function imageCommand(): Command {
  const image = new Command("image").description("the image library: ISOs and cloud disk images");
  const kind = () => new Option("--kind <kind>", "iso or disk").choices(["iso", "disk"]).makeOptionMandatory();
  const checksum = (opts: { sha256?: string }) => (opts.sha256 ? { checksum: { algorithm: "sha256", value: opts.sha256 } } : {});

  image.command("list").action(async (_opts, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    const { items } = await ctx.api.request("GET", "/v1/images");
    ctx.show(items, (rows: any[]) =>
      printTable(rows, [
        { header: "ID", value: (i) => i.id },
        { header: "NAME", value: (i) => i.name },
        { header: "KIND", value: (i) => i.kind },
        { header: "STATUS", value: (i) => i.status },
        { header: "SIZE", value: (i) => formatBytes(i.sizeBytes) },
        { header: "POOL", value: (i) => i.poolId },
      ]),
    );
  });

  image.command("show <id>").action(async (id: string, _opts, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    ctx.show(await ctx.api.request("GET", `/v1/images/${encodeURIComponent(id)}`), (i) => console.log(JSON.stringify(i, null, 2)));
  });

  image.command("catalog").description("images that can be fetched by id").action(async (_opts, cmd: Command) => {
    const ctx = CliContext.from(cmd);
    const { items } = await ctx.api.request("GET", "/v1/images/catalog");
    ctx.show(items, (rows: any[]) => printTable(rows, [{ header: "ID", value: (c) => c.id }, { header: "NAME", value: (c) => c.name }, { header: "KIND", value: (c) => c.kind }]));
  });

  image
    .command("download")
    .description("download an image into a pool, from the catalog or a URL")
    .requiredOption("--pool <id>", "the pool to keep it in")
    .option("--catalog <id>", "a catalog entry")
    .option("--url-stdin", "read the URL from standard input (it may hold credentials: never pass those as arguments)")
    .option("--url <url>", "an http(s) URL without credentials")
    .option("--name <name>", "the image's name")
    .addOption(new Option("--kind <kind>", "iso or disk").choices(["iso", "disk"]))
    .option("--sha256 <hex>", "expected checksum")
    .action(async (opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const url = opts.urlStdin ? (await readStdin()).trim() : opts.url;
      if (!opts.catalog === !url) throw new UsageError("give exactly one of --catalog, --url or --url-stdin");
      const body = opts.catalog
        ? { source: "catalog", catalogId: opts.catalog, poolId: opts.pool, ...(opts.name ? { name: opts.name } : {}) }
        : { source: "url", url, name: opts.name ?? new URL(url).pathname.split("/").pop(), kind: opts.kind ?? "disk", poolId: opts.pool, ...checksum(opts) };
      const { accepted } = await ctx.mutate("POST", "/v1/images", body);
      if (!ctx.options.json) console.log(accepted.imageId);
    });

  image
    .command("upload <file>")
    .description("upload a local file into a pool (streamed, never buffered)")
    .requiredOption("--pool <id>", "the pool to keep it in")
    .requiredOption("--name <name>", "the image's name")
    .addOption(kind())
    .option("--sha256 <hex>", "expected checksum")
    .action(async (file: string, opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      statSync(file); // a missing file is the user's mistake, reported before anything is created
      const created = await ctx.api.request("POST", "/v1/images", {
        body: { source: "upload", name: opts.name, kind: opts.kind, poolId: opts.pool, ...checksum(opts) },
        idempotencyKey: ctx.options.idempotencyKey,
      });
      const stream = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
      await ctx.mutate("PUT", `/v1/images/${created.id}/content`, undefined, { stream });
      if (!ctx.options.json) console.log(created.id);
    });

  image.command("delete <id>").action(async (id: string, _opts, cmd: Command) => {
    await CliContext.from(cmd).mutate("DELETE", `/v1/images/${encodeURIComponent(id)}`);
  });
  return image;
}
