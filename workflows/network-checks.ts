import { ApplicationFailure } from "@temporalio/workflow";

/** Fails the step unless the object is in one of `states` (a stale request must not act). */
export function expectNetState<T extends { state: string }>(kind: string, id: string, row: T, states: string[]): T {
  if (!states.includes(row.state)) {
    throw ApplicationFailure.create({ type: "CONFLICT", nonRetryable: true, message: `${kind} ${id} is ${row.state}, expected ${states.join(" or ")}` });
  }
  return row;
}
