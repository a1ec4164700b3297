import type { z } from "zod";
import { ApiError } from "./problem";

/** Parses input with a schema; failures become 400 problem+json listing each field's issue. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const errors = result.error.issues.map((i) => ({ field: i.path.join(".") || where, message: i.message }));
  throw new ApiError("VALIDATION_FAILED", `invalid ${where}: ${errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`, { errors });
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function idempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(header)) throw new ApiError("VALIDATION_FAILED", "Idempotency-Key must be 1-255 visible ASCII characters");
  return header;
}
