import { Router } from "express";
import type { ApiContext } from "../use-cases/context";
import { presentHost } from "../presenters";

export function hostRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get("/", async (_req, res) => {
    const hosts = await ctx.prisma.host.findMany({
      orderBy: { id: "asc" },
      include: { pools: true, vms: { select: { vcpus: true, memoryMiB: true } } },
    });
    res.json({ items: hosts.map(presentHost) });
  });
  return router;
}
