import type { ErrorCode } from "../../common/errors";
import { runWithProgress } from "./progress-command";

/** `qemu-img convert -p`, streaming its "(NN.NN/100%)" progress and stoppable by an AbortSignal. */

export interface StreamedConvert {
  /** Everything after `qemu-img convert -p`. */
  args: string[];
  onPercent: (percent: number) => void;
  signal?: AbortSignal;
  /** Error code for a failed copy. */
  errorCode: ErrorCode;
  /** Blanked out of error messages. */
  redact: string[];
}

/**
 * Resolves when the copy is complete. Rejects with CANCELLED only after qemu-img has exited, so the
 * caller can remove the partial target without racing a writer that still has it open.
 */
export function convertStreamed(req: StreamedConvert): Promise<void> {
  return runWithProgress({ command: "qemu-img", ...req, args: ["convert", "-p", ...req.args], progressOn: "stdout" });
}
