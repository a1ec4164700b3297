import { CancellationScope } from "@temporalio/workflow";
import type { StepTag } from "../common/step-header";

/**
 * Which saga step (or undo) the workflow code is running now, so that every activity it schedules
 * can carry it (see step-header-interceptor.ts). The saga runs each step and each undo in a scope
 * of its own and tags the scope; anything scheduled inside finds the tag by walking up its scopes.
 * A WeakMap keyed by scope objects cannot mix two workflows' steps, however the SDK shares modules.
 */
interface ScopeTag {
  tag: Omit<StepTag, "call">;
  /** Activities scheduled in this step so far. */
  calls: number;
}

const tags = new WeakMap<CancellationScope, ScopeTag>();

/** Runs `fn` in a new scope (cancellable or not) tagged with `tag`. */
export function runTagged<T>(tag: Omit<StepTag, "call">, cancellable: boolean, fn: () => Promise<T>): Promise<T> {
  const scope = new CancellationScope({ cancellable });
  tags.set(scope, { tag, calls: 0 });
  return scope.run(fn);
}

/**
 * The tag for an activity being scheduled now (counting it), or undefined outside any step.
 * `retrying`: the SDK schedules a local activity again after a long backoff; it is the same call.
 */
export function nextActivityTag(retrying = false): StepTag | undefined {
  for (let scope: CancellationScope | undefined = CancellationScope.current(); scope; scope = scope.parent) {
    const found = tags.get(scope);
    if (found) return { ...found.tag, call: retrying ? Math.max(0, found.calls - 1) : found.calls++ };
  }
  return undefined;
}
