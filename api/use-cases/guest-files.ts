import { randomBytes, randomUUID } from "node:crypto";
import path from "node:path/posix";
import type { Request, Response } from "express";
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from "@temporalio/client";
import type { GuestFileEntry, GuestFileRequest } from "../../activities/guest-agent/guest-files";
import { DEFAULT_GUEST_FILE_MAX_READ_BYTES, DEFAULT_GUEST_FILE_MAX_WRITE_BYTES } from "../../common/config";
import { isErrorCode } from "../../common/errors";
import { guestFilesWorkflowId } from "../../common/operations";
import type { GuestFilesInput } from "../../workflows/guest-files";
import { ApiError } from "../problem";
import { hostTimeouts, type ApiContext } from "./context";
import { requireVm } from "./vms";

/**
 * A guest's files through its agent (GET/PUT/DELETE /v1/vms/:id/agent/files...): each request is
 * a short guestFiles workflow on the VM's host, so the API never talks to a host itself. Reads
 * stream chunk by chunk to the client; writes go to a partial file renamed into place at the end.
 */
const CHUNK_BYTES = 512 * 1024;

async function call<T>(ctx: ApiContext, vmId: string, request: GuestFileRequest): Promise<T> {
  const vm = await requireVm(ctx, vmId);
  if (vm.state !== "RUNNING" || !vm.hostId) throw new ApiError("CONFLICT", `VM ${vmId} is ${vm.state}; the guest agent needs it RUNNING`);
  try {
    return (await ctx.temporal.workflow.execute("guestFiles", {
      taskQueue: ctx.config.controlPlaneQueue,
      workflowId: guestFilesWorkflowId(vmId, randomUUID()),
      args: [{ hostId: vm.hostId, vmId, request, timeouts: hostTimeouts(ctx) }] satisfies [GuestFilesInput],
    })) as T;
  } catch (err) {
    const cause = err instanceof WorkflowFailedError && err.cause instanceof ActivityFailure ? err.cause.cause : undefined;
    if (cause instanceof ApplicationFailure && isErrorCode(cause.type)) throw new ApiError(cause.type, cause.message);
    throw err;
  }
}

export async function listGuestFiles(ctx: ApiContext, vmId: string, guestPath: string): Promise<GuestFileEntry[]> {
  return call(ctx, vmId, { kind: "list", path: guestPath });
}

export async function deleteGuestFile(ctx: ApiContext, vmId: string, guestPath: string): Promise<void> {
  await call(ctx, vmId, { kind: "delete", path: guestPath });
}

/** Streams a guest file, bounded: one over the limit is refused before a byte is sent. */
export async function streamGuestFile(ctx: ApiContext, vmId: string, guestPath: string, res: Response): Promise<void> {
  const limit = ctx.config.guestFileMaxReadBytes ?? DEFAULT_GUEST_FILE_MAX_READ_BYTES;
  const stat = await call<Omit<GuestFileEntry, "name">>(ctx, vmId, { kind: "stat", path: guestPath });
  if (stat.type !== "file") throw new ApiError("CONFLICT", `${guestPath} is a ${stat.type}, not a file`);
  if (stat.sizeBytes > limit) throw new ApiError("CONTENT_TOO_LARGE", `${guestPath} is ${stat.sizeBytes} bytes; reads stop at ${limit}`);
  res.status(200).type("application/octet-stream").set("Content-Length", String(stat.sizeBytes));
  let sent = 0;
  try {
    while (sent < stat.sizeBytes) {
      const chunk = await call<{ dataBase64: string; eof: boolean }>(ctx, vmId, { kind: "read", path: guestPath, offset: sent, length: Math.min(CHUNK_BYTES, stat.sizeBytes - sent) });
      const data = Buffer.from(chunk.dataBase64, "base64");
      if (data.length === 0) throw new Error(`${guestPath} shrank while it was read`);
      if (!res.write(data)) await new Promise((r) => res.once("drain", r));
      sent += data.length;
    }
    res.end();
  } catch (err) {
    // Headers are gone: cut the transfer short, so the client sees an incomplete body (Content-Length).
    console.error(`guest file read of ${guestPath} broke off at ${sent} bytes:`, err);
    res.destroy();
  }
}

/** Reads the request body, refusing it past `limit` (declared or actual). */
async function boundedBody(req: Request, limit: number): Promise<Buffer> {
  const declared = req.get("content-length");
  if (declared !== undefined && Number(declared) > limit) throw new ApiError("PAYLOAD_TOO_LARGE", `guest file writes are at most ${limit} bytes`);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new ApiError("PAYLOAD_TOO_LARGE", `guest file writes are at most ${limit} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** Writes the body to a guest file: chunks into a partial file beside it, then a rename. */
export async function writeGuestFileContent(ctx: ApiContext, vmId: string, guestPath: string, req: Request): Promise<{ sizeBytes: number }> {
  const data = await boundedBody(req, ctx.config.guestFileMaxWriteBytes ?? DEFAULT_GUEST_FILE_MAX_WRITE_BYTES);
  const partial = path.join(path.dirname(guestPath), `.${path.basename(guestPath)}.quantix-partial-${randomBytes(4).toString("hex")}`);
  try {
    for (let at = 0; at === 0 || at < data.length; at += CHUNK_BYTES) {
      const dataBase64 = data.subarray(at, at + CHUNK_BYTES).toString("base64");
      await call(ctx, vmId, { kind: "write", path: partial, mode: at === 0 ? "w" : "a", dataBase64 });
    }
    await call(ctx, vmId, { kind: "rename", from: partial, to: guestPath });
  } catch (err) {
    await call(ctx, vmId, { kind: "delete", path: partial }).catch(() => undefined);
    throw err;
  }
  return { sizeBytes: data.length };
}
