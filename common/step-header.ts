import { defaultPayloadConverter, type Payload } from "@temporalio/common";

/**
 * The saga step an activity runs for, carried in the `qx-step` header of every activity (and local
 * activity) the saga schedules: workers log it, and the failure-sweep tests aim at "the activities
 * of step S" with it rather than at activity names written by hand.
 */
export const STEP_HEADER = "qx-step";

export interface StepTag {
  /** The step's name as the Operation records it ("create-data-disk sda"). */
  step: string;
  kind: "STEP" | "UNDO";
  /** The n-th activity (0-based) scheduled by this step or undo: a step may call several. */
  call: number;
  /** After the saga's point of no return: the step is retried until it succeeds, never undone. */
  committed: boolean;
}

export function stepHeader(tag: StepTag): Payload {
  return defaultPayloadConverter.toPayload(tag);
}

/** The step an activity runs for, from its headers; undefined for activities outside a saga. */
export function stepTagOf(headers: Record<string, Payload> | undefined): StepTag | undefined {
  const payload = headers?.[STEP_HEADER];
  return payload ? defaultPayloadConverter.fromPayload<StepTag>(payload) : undefined;
}
