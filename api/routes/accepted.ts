import type { Response } from "express";
import type { ControlPlaneConfig } from "../../common/config";
import { presentOperation } from "../presenters";
import type { StartedOperation } from "../use-cases/start-operation";

/** 202 + Location of the operation; a replayed Idempotency-Key answers with the same operation. */
export function sendAccepted(config: ControlPlaneConfig, res: Response, started: StartedOperation, extra: Record<string, unknown> = {}): void {
  res
    .status(202)
    .location(`/v1/operations/${started.operation.id}`)
    .set("Idempotent-Replayed", String(started.replayed))
    .json({ operationId: started.operation.id, operation: presentOperation(config, started.operation), ...extra });
}
