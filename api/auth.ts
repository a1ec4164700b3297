import { timingSafeEqual } from "node:crypto";
import type { RequestHandler } from "express";
import { ApiError } from "./problem";

/** Parses QX_API_TOKENS: "token1=alice,token2=bob" (token → the user it authenticates). */
export function parseApiTokens(spec: string): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const entry of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = entry.indexOf("=");
    if (eq <= 0 || eq === entry.length - 1) throw new Error("QX_API_TOKENS entries must be token=user");
    tokens.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return tokens;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Bearer-token auth: sets res.locals.user to the token's user, or answers 401. */
export function bearerAuth(tokens: Map<string, string>): RequestHandler {
  return (req, res, next) => {
    const header = req.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    const presented = match?.[1];
    const user = presented ? [...tokens].find(([token]) => sameSecret(token, presented))?.[1] : undefined;
    if (!user) {
      res.set("WWW-Authenticate", 'Bearer realm="quantix"');
      return next(new ApiError("UNAUTHORIZED", presented ? "the bearer token is not valid" : "send Authorization: Bearer <token>"));
    }
    res.locals.user = user;
    next();
  };
}
