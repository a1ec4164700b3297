import { execFileSync, spawn } from "node:child_process";
import type { Server } from "node:net";

/**
 * The tests' web servers live in a network namespace of their own, reached from the root namespace
 * over a veth pair on a private /30. Downloads refuse loopback always, so a server on 127.0.0.1
 * could not serve them; this way every download test goes through the fetch policy, admitted by the
 * allow-list (`cidr`) the test configuration sets, as an operator's internal mirror would be.
 *
 * The server itself stays in the test process: a short-lived child started inside the namespace
 * (`ip netns exec`) binds the listening socket there and hands it over the IPC channel; sockets keep
 * the namespace they were made in, so the test's own http.Server accepts on it.
 */
export interface NamespaceNetwork {
  namespace: string;
  /** The veth end in the root namespace, and the one inside. */
  hostSide: string;
  namespaceSide: string;
  hostAddress: string;
  /** Where servers listen. */
  namespaceAddress: string;
  cidr: string;
}

function network(name: string, subnet: number): NamespaceNetwork {
  return {
    namespace: `qx13-${name}`,
    hostSide: `qx13-${name}-h`.slice(0, 15),
    namespaceSide: `qx13-${name}-n`.slice(0, 15),
    hostAddress: `10.213.${subnet}.1`,
    namespaceAddress: `10.213.${subnet}.2`,
    cidr: `10.213.${subnet}.0/30`,
  };
}

/** The test run's network: names and the /30 (10.213.N.0/30) come from QX_TEST_INSTANCE, so runs never share one. */
export function testNetwork(): NamespaceNetwork {
  const instance = Number(process.env.QX_TEST_INSTANCE ?? 0);
  return network(`w${instance}`, instance);
}

/** The benchmark's own network, apart from every test instance's. */
export const BENCH_NETWORK = network("bench", 255);

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

function exists(kind: "netns" | "link", name: string): boolean {
  const out = execFileSync("ip", kind === "netns" ? ["netns", "list"] : ["-o", "link", "show"], { encoding: "utf8" });
  return kind === "netns" ? out.split("\n").some((l) => l.split(" ")[0] === name) : out.includes(`: ${name}@`) || out.includes(`: ${name}:`);
}

/** Removes the namespace and its veth pair; nothing to do when a previous run already did. */
export function removeNamespaceNetwork(net: NamespaceNetwork): void {
  if (exists("netns", net.namespace)) ip("netns", "delete", net.namespace);
  // Deleting the namespace destroys its end, and with it the pair, but the kernel does that
  // asynchronously: the link may vanish between the check and the delete. A half-made pair may remain.
  if (!exists("link", net.hostSide)) return;
  try {
    ip("link", "delete", net.hostSide);
  } catch (err) {
    if (!/Cannot find device/.test(String((err as { stderr?: Buffer }).stderr ?? ""))) throw err;
  }
}

/** Makes the namespace afresh (whatever a killed run left) in a few milliseconds. */
export function createNamespaceNetwork(net: NamespaceNetwork): void {
  removeNamespaceNetwork(net);
  ip("netns", "add", net.namespace);
  ip("-n", net.namespace, "link", "set", "lo", "up");
  ip("link", "add", net.hostSide, "type", "veth", "peer", "name", net.namespaceSide, "netns", net.namespace);
  ip("addr", "add", `${net.hostAddress}/30`, "dev", net.hostSide);
  ip("link", "set", net.hostSide, "up");
  ip("-n", net.namespace, "addr", "add", `${net.namespaceAddress}/30`, "dev", net.namespaceSide);
  ip("-n", net.namespace, "link", "set", net.namespaceSide, "up");
}

const BIND_IN_NAMESPACE = `
const server = require("node:net").createServer();
server.listen(0, process.argv[1], () => process.send("listening", server, () => { server.close(); process.disconnect(); }));
`;

/** Makes `server` listen on a free port of the namespace's address. */
export function listenInNamespace(net: NamespaceNetwork, server: Server): Promise<void> {
  const child = spawn("ip", ["netns", "exec", net.namespace, process.execPath, "-e", BIND_IN_NAMESPACE, net.namespaceAddress], {
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once("message", (_message, handle) => server.listen(handle as Server, () => resolve()));
    child.once("exit", (code) => code !== 0 && reject(new Error(`binding in namespace ${net.namespace} failed (${code}): ${stderr}`)));
    child.once("error", reject);
  });
}
