import type { RequestHandler } from "express";
import { ApiError } from "./problem";

/**
 * One rule for every string the API accepts, in one place rather than per field: no NUL and no
 * unpaired UTF-16 surrogate, in any value or key of the JSON body or the query. PostgreSQL refuses
 * a NUL byte in text (the request became a 500), and a lone surrogate has no UTF-8 form: it would be
 * mangled on its way to the database, Temporal or a file name. Such input is a 400 naming each field.
 */
const UNSAFE_TEXT = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function unsafeFields(value: unknown, at: string, found: string[]): string[] {
  if (typeof value === "string") {
    if (UNSAFE_TEXT.test(value)) found.push(at);
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => unsafeFields(item, `${at}.${i}`, found));
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (UNSAFE_TEXT.test(key)) found.push(`${at} (a key)`);
      unsafeFields(item, `${at}.${key}`, found);
    }
  }
  return found;
}

export const refuseUnsafeText: RequestHandler = (req, _res, next) => {
  const fields = [...unsafeFields(req.body, "body", []), ...unsafeFields(req.query, "query", [])];
  if (fields.length === 0) return next();
  const errors = fields.map((field) => ({ field, message: "contains a NUL character or an unpaired surrogate" }));
  next(new ApiError("VALIDATION_FAILED", `invalid text in ${fields.join(", ")}: NUL characters and unpaired surrogates are not accepted`, { errors }));
};
