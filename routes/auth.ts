import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";

const PUBLIC_PATHS = new Set(["/health", "/ready"]);
const CHALLENGE = { "WWW-Authenticate": "Bearer" };

/**
 * Requires one of `keys`, as `Authorization: Bearer <key>` or (as Anthropic's clients send
 * it) `x-api-key: <key>`, on every path but `/health` and `/ready`. No keys means no
 * authentication.
 */
export function bearerAuth(keys: readonly string[]): MiddlewareHandler {
  const encoder = new TextEncoder();
  const accepted = keys.map((key) => encoder.encode(key));
  return async (c, next) => {
    if (accepted.length === 0 || PUBLIC_PATHS.has(c.req.path) || c.req.method === "OPTIONS") {
      return await next();
    }
    const header = c.req.header("Authorization");
    const bearer = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    const key = bearer ?? c.req.header("x-api-key")?.trim();
    if (!key) {
      throw new ApiError(
        401,
        "Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
        { code: "invalid_api_key", headers: CHALLENGE },
      );
    }
    const given = encoder.encode(key);
    let ok = false;
    for (const key of accepted) ok = constantTimeEqual(given, key) || ok;
    if (!ok) {
      throw new ApiError(401, "Incorrect API key provided", {
        code: "invalid_api_key",
        headers: CHALLENGE,
      });
    }
    await next();
  };
}

/** Compares two byte strings in time that depends only on their lengths. */
export function constantTimeEqual(given: Uint8Array, key: Uint8Array): boolean {
  let diff = given.length ^ key.length;
  for (let i = 0; i < given.length; i++) diff |= given[i]! ^ (key[i] ?? 0);
  return diff === 0;
}
