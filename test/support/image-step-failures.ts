import { permanentFailure } from "../../common/errors";

/**
 * Failure injection for the image workflows, omicron style: the real workers are restarted over a
 * copy of their activities in which one activity fails, non-retryably, so the test can check the
 * workflow failed at that step and left a clean slate. (Kept apart from step-failures.ts, which is
 * being reworked; the wrapping is the same idea.)
 */
export const INJECTED_CODE = "STORAGE_ERROR";

export interface ImageStepActivity {
  step: string;
  activity: string;
  side: "database" | "host";
}

export function failingAt<T extends object>(activities: T, name: string): T {
  if (!(name in activities)) throw new Error(`no activity ${name}`);
  return {
    ...activities,
    [name]: async () => {
      throw permanentFailure(INJECTED_CODE, `injected failure in ${name}`);
    },
  };
}
