import { domainName } from "../../activities/libvirt/domain-xml";
import { CommandError, runCommand } from "../../common/exec";

export const TEST_TOKEN = "test-token";
export const TEST_USER = "tester";

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
}

export interface ApiClient {
  request(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  waitForOperation(operationId: string, until?: (op: any) => boolean, timeoutMs?: number): Promise<any>;
}

const finished = (op: { state: string }) => ["COMPLETED", "FAILED", "CANCELLED"].includes(op.state);

/** The REST API as a test uses it, at whatever URL `baseUrl` gives now (a restarted API may move). */
export function apiClient(baseUrl: () => string, token = TEST_TOKEN): ApiClient {
  const request: ApiClient["request"] = async (method, urlPath, body, headers = {}) => {
    const res = await fetch(baseUrl() + urlPath, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    const json = /json/.test(res.headers.get("content-type") ?? "");
    return { status: res.status, headers: res.headers, body: text && json ? JSON.parse(text) : text || undefined };
  };
  const waitForOperation: ApiClient["waitForOperation"] = async (operationId, until = finished, timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await request("GET", `/v1/operations/${operationId}`);
      if (res.status === 200 && until(res.body)) return res.body;
      if (Date.now() > deadline) throw new Error(`operation ${operationId} still ${JSON.stringify(res.body)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { request, waitForOperation };
}

/** libvirt's view of a VM's domain: its state, or null when no such domain is defined. */
export async function domainState(vmId: string): Promise<string | null> {
  try {
    return (await runCommand("virsh", ["-c", "qemu:///system", "domstate", domainName(vmId)])).stdout.trim();
  } catch (err) {
    // Only libvirt's "no such domain" means gone; a daemon that does not answer fails the test.
    if (err instanceof CommandError && /failed to get domain|Domain not found/i.test(err.stderr)) return null;
    throw err;
  }
}

/** Destroys and undefines the domains of these VMs, whatever a failed test left. */
export async function removeDomains(vmIds: string[]): Promise<void> {
  for (const id of vmIds) {
    const name = domainName(id);
    await runCommand("virsh", ["-c", "qemu:///system", "destroy", name]).catch(() => undefined);
    await runCommand("virsh", ["-c", "qemu:///system", "undefine", name]).catch(() => undefined);
  }
}
