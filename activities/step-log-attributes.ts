import type { ActivityInterceptorsFactory } from "@temporalio/worker";
import { stepTagOf, type StepTag } from "../common/step-header";

/**
 * Every worker's activity log lines name the saga step they run for (the `qx-step` header the
 * workflow sets): "step create-data-disk sda (call 0)" beside the activity type, so an operator
 * reading a host's log can tie each line to the operation's step list.
 */
export const stepLogAttributes: ActivityInterceptorsFactory = () => {
  let tag: StepTag | undefined;
  return {
    inbound: {
      execute(input, next) {
        tag = stepTagOf(input.headers);
        return next(input);
      },
    },
    outbound: {
      getLogAttributes(input, next) {
        return next(tag ? { ...input, step: tag.step, stepKind: tag.kind, stepCall: tag.call } : input);
      },
    },
  };
};
