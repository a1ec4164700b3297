import { Router } from "express";
import type { ApiContext } from "../use-cases/context";
import { deleteGuestFile, listGuestFiles, streamGuestFile, writeGuestFileContent } from "../use-cases/guest-files";
import { guestPath } from "../agent-schemas";
import { idParam } from "../schemas";
import { parse } from "../validate";

/**
 * /v1/vms/:id/agent/files — a guest's files, as the guest sees them (`?path=` is a guest path).
 * Mounted before the JSON body parser: a PUT's body is the file's bytes.
 */
export function guestFileRoutes(ctx: ApiContext): Router {
  const router = Router();
  const target = (req: { params: { id?: string }; query: Record<string, unknown> }) => ({
    vmId: parse(idParam, req.params.id, "VM id"),
    path: parse(guestPath, req.query.path, "path"),
  });

  router.get("/vms/:id/agent/files", async (req, res) => {
    const { vmId, path } = target(req);
    res.json({ path, items: await listGuestFiles(ctx, vmId, path) });
  });

  router.get("/vms/:id/agent/files/content", async (req, res) => {
    const { vmId, path } = target(req);
    await streamGuestFile(ctx, vmId, path, res);
  });

  router.put("/vms/:id/agent/files/content", async (req, res) => {
    const { vmId, path } = target(req);
    res.status(201).json({ path, ...(await writeGuestFileContent(ctx, vmId, path, req)) });
  });

  router.delete("/vms/:id/agent/files", async (req, res) => {
    const { vmId, path } = target(req);
    await deleteGuestFile(ctx, vmId, path);
    res.status(204).end();
  });

  return router;
}
