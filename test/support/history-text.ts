import type { Client } from "@temporalio/client";

/**
 * Everything a workflow's history holds, payloads decoded to text: what anyone with access to
 * the Temporal UI could read. Tests search it for secrets.
 */
export async function historyText(temporal: Client, workflowId: string): Promise<string> {
  const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
  const parts: string[] = [];
  const walk = (value: unknown): void => {
    if (value instanceof Uint8Array) parts.push(Buffer.from(value).toString("utf8"));
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") Object.values(value).forEach(walk);
    else if (typeof value === "string") parts.push(value);
  };
  walk(history);
  return parts.join("\n");
}
