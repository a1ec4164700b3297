import { spawn, type ChildProcess } from "node:child_process";
import { runCommand } from "../common/exec";
import { portGroupName } from "../activities/ovn/nb-names";
import { eventually, pings, plugEndpoint, portBinding, startOvnStack, type OvnStack } from "./support/ovn";
import { startTestSystem, type TestSystem } from "./support/system";

/**
 * Security groups on a real OVN stack (one chassis in its own namespace). The endpoints are OVS
 * internal ports in network namespaces (no guest needed to show ACLs): "server" is in the group
 * under test, "client" in none (unfiltered) or in a group named as a rule's remote group.
 */
let stack: OvnStack;
let system: TestSystem;
let listener: ChildProcess | undefined;

beforeAll(async () => {
  stack = await startOvnStack({ chassis: ["hv1"] });
  system = await startTestSystem({ ovn: { stack, chassis: ["hv1"] } });
}, 120_000);

afterAll(async () => {
  listener?.kill("SIGKILL");
  await system?.shutdown();
  await stack?.stop();
});

async function completed(res: { status: number; body: any }) {
  // The problem's body, when it is one, says why.
  expect({ status: res.status, problem: res.status === 202 ? undefined : res.body }).toEqual({ status: 202, problem: undefined });
  const op = await system.waitForOperation(res.body.operationId);
  expect({ state: op.state, error: op.error }).toEqual({ state: "COMPLETED", error: null });
  return res.body;
}

/** A TCP connection from `ns` to ip:port is answered by the listener. */
async function connects(ns: string, ip: string, port: number): Promise<boolean> {
  const out = await runCommand("ip", ["netns", "exec", ns, "busybox", "nc", "-w", "2", ip, String(port)], { input: "", timeoutMs: 10_000 }).then(
    (r) => r.stdout,
    () => "",
  );
  return out.includes("hello");
}

test("a group denies ingress and allows egress; a rule added lets traffic in, removed stops it; remote groups; in use cannot be deleted", async () => {
  const networkId = (await completed(await system.request("POST", "/v1/networks", { name: "sg", cidr: "10.65.0.0/24" }))).networkId;
  const web = (await completed(await system.request("POST", "/v1/security-groups", { name: "web" }))).securityGroupId;
  const group = (await system.request("GET", `/v1/security-groups/${web}`)).body;
  expect(group.rules.map((r: any) => [r.direction, r.protocol])).toEqual([["egress", "any"]]);

  const serverPort = (await completed(await system.request("POST", "/v1/ports", { networkId, ip: "10.65.0.10", securityGroupIds: [web] }))).portId;
  const clientPort = (await completed(await system.request("POST", "/v1/ports", { networkId, ip: "10.65.0.20" }))).portId;
  const ports = await Promise.all([serverPort, clientPort].map(async (id) => (await system.request("GET", `/v1/ports/${id}`)).body));
  const chassis = stack.chassis[0]!;
  const server = await plugEndpoint(stack, chassis, ports[0], "srv", "10.65.0.10/24");
  const client = await plugEndpoint(stack, chassis, ports[1], "cli", "10.65.0.20/24");
  for (const id of [serverPort, clientPort]) await eventually(`binding of ${id}`, async () => (await portBinding(stack, id))?.up);
  listener = spawn("ip", ["netns", "exec", server, "busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/echo", "hello"], { stdio: "ignore" });

  // Default: nothing gets in; the server's own connections out (and their replies) do.
  expect(await pings(client, "10.65.0.10")).toBe(false);
  expect(await connects(client, "10.65.0.10", 8080)).toBe(false);
  expect(await pings(server, "10.65.0.20")).toBe(true);

  // A rule added applies to the group's existing ports; removed, the traffic stops again.
  const icmp = await completed(await system.request("POST", `/v1/security-groups/${web}/rules`, { direction: "ingress", protocol: "icmp", remoteCidr: "10.65.0.20/32" }));
  expect(await pings(client, "10.65.0.10")).toBe(true);
  expect(await connects(client, "10.65.0.10", 8080)).toBe(false);
  const tcp = await completed(await system.request("POST", `/v1/security-groups/${web}/rules`, { direction: "ingress", protocol: "tcp", portMin: 8000, portMax: 8100 }));
  expect(await connects(client, "10.65.0.10", 8080)).toBe(true);
  await completed(await system.request("DELETE", `/v1/security-groups/${web}/rules/${tcp.ruleId}`));
  expect(await connects(client, "10.65.0.10", 8080)).toBe(false);
  await completed(await system.request("DELETE", `/v1/security-groups/${web}/rules/${icmp.ruleId}`));
  expect(await pings(client, "10.65.0.10")).toBe(false);

  // A remote group: ICMP from members of "clients" — the client is let in once it joins.
  const clients = (await completed(await system.request("POST", "/v1/security-groups", { name: "clients" }))).securityGroupId;
  await completed(await system.request("POST", `/v1/security-groups/${web}/rules`, { direction: "ingress", protocol: "icmp", remoteGroupId: clients }));
  expect(await pings(client, "10.65.0.10")).toBe(false);
  await completed(await system.request("PATCH", `/v1/ports/${clientPort}`, { securityGroupIds: [clients] }));
  expect(await eventually("ping from a member of the remote group", () => pings(client, "10.65.0.10", { count: 1 }), 10_000)).toBe(true);

  // In OVN: one port group per group, its ACLs tagged with the rules they stand for.
  const [pg] = await stack.northbound.select("Port_Group", [["name", "==", portGroupName(web)]], ["ports", "acls"]);
  expect(pg).toBeDefined();

  // A group in use (ports in it, or named by another group's rule) is 409; freed, it goes with its rows.
  for (const id of [web, clients]) {
    const refused = await system.request("DELETE", `/v1/security-groups/${id}`);
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 409, code: "SECURITY_GROUP_IN_USE" });
  }
  for (const id of [serverPort, clientPort]) await completed(await system.request("DELETE", `/v1/ports/${id}`));
  await completed(await system.request("DELETE", `/v1/security-groups/${web}`));
  await completed(await system.request("DELETE", `/v1/security-groups/${clients}`));
  await completed(await system.request("DELETE", `/v1/networks/${networkId}`));
  expect(await stack.northbound.ownedRows()).toEqual([]);
});

test("a rule change that fails is undone: the ACLs and rows are as before", async () => {
  const group = (await completed(await system.request("POST", "/v1/security-groups", { name: "undo" }))).securityGroupId;
  const acls = async () => (await stack.northbound.ownedRows()).filter((r) => r.table === "ACL").map((r) => r.externalIds["qx-acl"]).sort();
  const before = await acls();
  // The ACLs are written, then the step fails: its own undo must put the old ones back.
  system.faults.arm({ workflowType: "updateSecurityGroupRules", step: "write-acls", variant: "after" });
  try {
    const res = await system.request("POST", `/v1/security-groups/${group}/rules`, { direction: "ingress", protocol: "tcp", portMin: 22 });
    const op = await system.waitForOperation(res.body.operationId);
    expect(op.state).toBe("FAILED");
    expect(op.steps.filter((s: any) => s.kind === "UNDO").map((s: any) => [s.name, s.state])).toEqual([["write-acls", "COMPLETED"]]);
  } finally {
    system.faults.clear();
  }
  expect(await acls()).toEqual(before);
  expect((await system.request("GET", `/v1/security-groups/${group}`)).body.rules.length).toBe(1);
  await completed(await system.request("DELETE", `/v1/security-groups/${group}`));
});
