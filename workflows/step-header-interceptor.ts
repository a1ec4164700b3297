import type { ActivityInput, LocalActivityInput, Next, WorkflowInterceptorsFactory, WorkflowOutboundCallsInterceptor } from "@temporalio/workflow";
import { STEP_HEADER, stepHeader } from "../common/step-header";
import { nextActivityTag } from "./step-context";

/**
 * Adds the `qx-step` header (the saga step, undo or final record an activity runs for, and its call
 * index within that step) to every activity and local activity a workflow schedules. Registered on
 * the control-plane worker's workflow bundle (workers/control-plane.ts).
 */
class StepHeaderInterceptor implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, "scheduleActivity">) {
    return next(withStep(input, false));
  }

  scheduleLocalActivity(input: LocalActivityInput, next: Next<WorkflowOutboundCallsInterceptor, "scheduleLocalActivity">) {
    return next(withStep(input, input.attempt > 1));
  }
}

function withStep<T extends ActivityInput | LocalActivityInput>(input: T, retrying: boolean): T {
  const tag = nextActivityTag(retrying);
  return tag ? { ...input, headers: { ...input.headers, [STEP_HEADER]: stepHeader(tag) } } : input;
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ outbound: [new StepHeaderInterceptor()] });
