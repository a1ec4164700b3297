import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { CliContext } from "../context";
import { printTable } from "../output";
import { readStdin } from "../stdin";

const POWER_ACTIONS = ["start", "stop", "force-stop", "reboot"] as const;

export function vmCommand(): Command {
  const vm = new Command("vm").description("virtual machines");

  vm.command("list")
    .description("list VMs")
    .action(async (_opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const { items } = await ctx.api.request("GET", "/v1/vms");
      ctx.show(items, (rows: any[]) =>
        printTable(rows, [
          { header: "ID", value: (v) => v.id },
          { header: "NAME", value: (v) => v.name },
          { header: "STATE", value: (v) => v.state },
          { header: "HOST", value: (v) => v.hostId },
          { header: "VCPUS", value: (v) => v.vcpus },
          { header: "MEMORY", value: (v) => `${v.memoryMiB} MiB` },
          { header: "DISK", value: (v) => `${v.diskSizeGiB} GiB` },
        ]),
      );
    });

  vm.command("show <id>")
    .description("show one VM")
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      ctx.show(await ctx.api.request("GET", `/v1/vms/${encodeURIComponent(id)}`), (v: any) =>
        printTable(Object.entries(v).filter(([k]) => k !== "links"), [
          { header: "FIELD", value: ([k]) => k },
          { header: "VALUE", value: ([, value]) => value },
        ]),
      );
    });

  vm.command("create <name>")
    .description("create a VM and wait until it runs")
    .requiredOption("--vcpus <n>", "virtual CPUs", toInt)
    .requiredOption("--memory <MiB>", "memory in MiB", toInt)
    .requiredOption("--disk <GiB>", "boot disk size in GiB", toInt)
    .option("--pool <id>", "storage pool of the boot disk")
    .option("--image <id>", "a READY image to boot from (cloud image or ISO)")
    .option("--base-image <path>", "a base image inside the pool (the disk becomes its copy-on-write child)")
    .option("--data-disk <pool:GiB>", "an empty data disk (repeatable)", collectDataDisk, [])
    .option("--ssh-key <file>", "an SSH public key file for cloud-init (repeatable)", collect, [])
    .option("--hostname <name>", "guest hostname for cloud-init")
    .option("--user <name>", "cloud-init default user")
    .addOption(new Option("--password-stdin", "read the default user's password from standard input (never from arguments)"))
    .action(async (name: string, opts, cmd: Command) => {
      const ctx = CliContext.from(cmd);
      const access = await accessSettings(opts);
      const body = {
        name,
        vcpus: opts.vcpus,
        memoryMiB: opts.memory,
        diskSizeGiB: opts.disk,
        ...(opts.pool ? { poolId: opts.pool } : {}),
        ...(opts.image ? { imageId: opts.image } : {}),
        ...(opts.baseImage ? { baseImage: opts.baseImage } : {}),
        ...(opts.dataDisk.length ? { disks: opts.dataDisk } : {}),
        ...(access ? { access } : {}),
      };
      const { accepted } = await ctx.mutate("POST", "/v1/vms", body);
      if (!ctx.options.json) console.log(accepted.vmId);
    });

  vm.command("delete <id>")
    .description("delete a VM (its data disks are kept as free volumes)")
    .action(async (id: string, _opts, cmd: Command) => {
      await CliContext.from(cmd).mutate("DELETE", `/v1/vms/${encodeURIComponent(id)}`);
    });

  for (const action of POWER_ACTIONS) {
    const sub = vm.command(`${action} <id>`).description(`${action} a VM`);
    if (action === "stop") sub.option("--timeout <seconds>", "how long the guest may take to power off", toInt);
    sub.action(async (id: string, opts, cmd: Command) => {
      const body = opts.timeout ? { timeoutSeconds: opts.timeout } : {};
      await CliContext.from(cmd).mutate("POST", `/v1/vms/${encodeURIComponent(id)}/actions/${action}`, body);
    });
  }
  return vm;
}

async function accessSettings(opts: { sshKey: string[]; hostname?: string; user?: string; passwordStdin?: boolean }) {
  const keys = opts.sshKey.map((file) => readFileSync(file, "utf8").trim());
  const password = opts.passwordStdin ? (await readStdin()).replace(/\r?\n$/, "") : undefined;
  if (!keys.length && !opts.hostname && !opts.user && password === undefined) return undefined;
  return {
    sshAuthorizedKeys: keys,
    ...(opts.hostname ? { hostname: opts.hostname } : {}),
    ...(opts.user ? { defaultUser: opts.user } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

export function toInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`not a whole number: ${value}`);
  return n;
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function collectDataDisk(value: string, previous: { poolId: string; sizeGiB: number }[]) {
  const at = value.lastIndexOf(":");
  if (at <= 0) throw new InvalidArgumentError(`takes pool:GiB, got ${value}`);
  return [...previous, { poolId: value.slice(0, at), sizeGiB: toInt(value.slice(at + 1)) }];
}
