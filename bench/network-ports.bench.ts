/**
 * Ports with a security group: N created through the API (one batch request: IPAM and the rows in
 * PostgreSQL, the createPort workflow, one Northbound transaction, the operation recorded) against
 * the same N switch ports (addresses, port security, DHCP options, external_ids, port-group
 * membership) written by one `ovn-nbctl` invocation, i.e. one transaction — interleaved in one run,
 * each on a fresh switch, for N = 50 and N = 500. Prints ports/s, the raw/API time ratio and the
 * per-port cost at each N (goal: API at least 0.5x the speed of ovn-nbctl; per-port cost flat).
 *
 *   QX_TEST_INSTANCE=9 npx tsx bench/network-ports.bench.ts [runs]    (default 3 runs per N)
 *
 * It starts the same real services as the tests (Temporal, PostgreSQL, an OVN central) on the
 * instance's ports; no chassis is needed (nothing is bound).
 */
import { randomUUID } from "node:crypto";
import { createNorthbound } from "../activities/ovn/northbound";
import { randomMac } from "../common/ipv4";
import { runCommand } from "../common/exec";
import globalSetup from "../test/global-setup";
import globalTeardown from "../test/global-teardown";
import { startOvnStack } from "../test/support/ovn";
import { startTestSystem, type TestSystem } from "../test/support/system";

const RUNS = Number(process.argv[2] ?? 3);
const SIZES = [50, 500];
// Polled as a client would, often enough to add little to the figure.
const POLL_MS = 20;

async function untilDone(system: TestSystem, operationId: string): Promise<void> {
  for (;;) {
    const op = (await system.request("GET", `/v1/operations/${operationId}`)).body;
    if (op.state === "COMPLETED") return;
    if (op.state === "FAILED" || op.state === "CANCELLED") throw new Error(`${op.type} ${op.state}: ${op.error?.message}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function accepted(system: TestSystem, method: string, path: string, body?: unknown) {
  const res = await system.request(method, path, body);
  if (res.status !== 202) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  await untilDone(system, res.body.operationId);
  return res.body;
}

async function main(): Promise<void> {
  await globalSetup();
  const stack = await startOvnStack({ chassis: [] });
  const system = await startTestSystem({ ovn: { stack, chassis: [] } });
  const nb = createNorthbound(stack.client);
  const nbctl = (args: string[]) => runCommand("ovn-nbctl", [`--db=${stack.nbRemote}`, ...args], { timeoutMs: 300_000 });
  try {
    const { securityGroupId } = await accepted(system, "POST", "/v1/security-groups", { name: "bench" });
    await nbctl(["pg-add", "bench_raw"]);
    const results: Record<number, { api: number[]; raw: number[] }> = {};

    const viaApi = async (n: number): Promise<number> => {
      const { networkId } = await accepted(system, "POST", "/v1/networks", { name: `bench-${n}`, cidr: "10.90.0.0/22" });
      const body = { ports: Array.from({ length: n }, () => ({ networkId, securityGroupIds: [securityGroupId] })) };
      const started = performance.now();
      await accepted(system, "POST", "/v1/ports", body);
      const ms = performance.now() - started;
      // Untimed cleanup: the rows and the switch (its ports go with it).
      await system.prisma.port.deleteMany({ where: { networkId } });
      await system.prisma.network.delete({ where: { id: networkId } });
      await nb.deleteNetwork(networkId);
      return ms;
    };

    const raw = async (n: number): Promise<number> => {
      const ls = `bench-raw-${randomUUID()}`;
      await nbctl(["ls-add", ls]);
      const dhcp = (await nbctl(["create", "DHCP_Options", "cidr=10.90.0.0/22", "options:lease_time=3600", "options:router=10.90.0.1", "options:server_id=10.90.0.1", `options:server_mac=${randomMac()}`])).stdout.trim();
      const names = Array.from({ length: n }, () => randomUUID());
      const args: string[] = [];
      names.forEach((name, i) => {
        const address = `${randomMac()} 10.90.${Math.floor((i + 2) / 256)}.${(i + 2) % 256}`;
        args.push("--", "lsp-add", ls, name, "--", "lsp-set-addresses", name, address, "--", "lsp-set-port-security", name, address);
        args.push("--", "lsp-set-dhcpv4-options", name, dhcp, "--", "set", "Logical_Switch_Port", name, "external_ids:qx-owner=bench", `external_ids:qx-port-id=${name}`);
      });
      args.push("--", "pg-set-ports", "bench_raw", ...names);
      const started = performance.now();
      await nbctl(args);
      const ms = performance.now() - started;
      await nbctl(["ls-del", ls]);
      await nbctl(["destroy", "DHCP_Options", dhcp]);
      return ms;
    };

    for (const n of SIZES) {
      results[n] = { api: [], raw: [] };
      // One untimed warm-up of each, then interleaved runs so both see the same machine.
      await viaApi(n);
      await raw(n);
      for (let r = 0; r < RUNS; r++) {
        results[n]!.api.push(await viaApi(n));
        results[n]!.raw.push(await raw(n));
      }
    }

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`\nports with a security group, ${RUNS} runs per size (median; range)`);
    for (const n of SIZES) {
      const { api, raw: rawMs } = results[n]!;
      const ratio = median(rawMs) / median(api);
      const ratios = api.map((a, i) => rawMs[i]! / a);
      console.log(
        `N=${n}: API ${median(api).toFixed(0)} ms (${(n / (median(api) / 1000)).toFixed(0)} ports/s, ${(median(api) / n).toFixed(2)} ms/port)` +
          ` | ovn-nbctl ${median(rawMs).toFixed(0)} ms (${(n / (median(rawMs) / 1000)).toFixed(0)} ports/s, ${(median(rawMs) / n).toFixed(2)} ms/port)` +
          ` | API speed / ovn-nbctl speed ${ratio.toFixed(2)}x (runs ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x)`,
      );
    }
    const perPort = (n: number) => median(results[n]!.api) / n;
    console.log(`API per-port cost, N=500 vs N=50: ${(perPort(500) / perPort(50)).toFixed(2)}x (flat or falling is the goal)`);
  } finally {
    await system.shutdown();
    await stack.stop();
    await globalTeardown();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
