import { Router } from "express";
import { WorkflowNotFoundError } from "@temporalio/client";
import type { ApiContext } from "../use-cases/context";
import { releaseIfAbandoned } from "../use-cases/start-operation";
import { presentOperation } from "../presenters";
import { idParam, listOperationsQuery } from "../schemas";
import { parse } from "../validate";
import { ApiError } from "../problem";
import { FINAL_OPERATION_STATES } from "../../common/operations";

export function operationRoutes(ctx: ApiContext): Router {
  const router = Router();

  const load = async (id: string) => {
    const op = await ctx.prisma.operation.findUnique({ where: { id }, include: { steps: true } });
    if (!op) throw new ApiError("NOT_FOUND", `operation ${id} does not exist`);
    return op;
  };

  router.get("/", async (req, res) => {
    const query = parse(listOperationsQuery, req.query, "query");
    const ops = await ctx.prisma.operation.findMany({
      where: { targetId: query.targetId, state: query.state },
      orderBy: { createdAt: "desc" },
      take: query.limit,
    });
    res.json({ items: ops.map((op) => presentOperation(ctx.config, op)) });
  });

  router.get("/:id", async (req, res) => {
    const id = parse(idParam, req.params.id, "operation id");
    const op = await load(id);
    // A row still RUNNING whose workflow is gone is closed here, so no operation shows running forever.
    if (await releaseIfAbandoned(ctx, op)) return res.json(presentOperation(ctx.config, await load(id)));
    res.json(presentOperation(ctx.config, op));
  });

  /** Requests cancellation; the workflow undoes what it did and closes the operation as CANCELLED. */
  router.post("/:id/cancel", async (req, res) => {
    const id = parse(idParam, req.params.id, "operation id");
    const op = await load(id);
    if ((FINAL_OPERATION_STATES as readonly string[]).includes(op.state)) {
      throw new ApiError("CONFLICT", `operation ${id} already ended ${op.state}`);
    }
    // Recorded first, so the request shows at once and is kept even if the workflow is slow to react.
    await ctx.prisma.operation.updateMany({ where: { id, cancelRequestedAt: null }, data: { cancelRequestedAt: new Date() } });
    try {
      await ctx.temporal.workflow.getHandle(op.workflowId).cancel();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      await releaseIfAbandoned(ctx, op);
    }
    res.status(202).location(`/v1/operations/${id}`).json(presentOperation(ctx.config, await load(id)));
  });

  return router;
}
