// Who sent a request, for the rights that reach the teacher: nobody in particular (no Authorization
// header), the admin (ADMIN_TOKEN), or an API key (api-keys.ts). A header that is neither is refused
// (401, or 400 when malformed) by Hono's bearer-auth, which compares the admin token in constant time;
// each refusal counts against the address's allowance of wrong guesses (auth-throttle.ts).
import type { D1Database } from "@cloudflare/workers-types";
import type { Context } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { timingSafeEqual } from "hono/utils/buffer";
import { HttpError } from "../http/errors.ts";
import { callerAddress } from "./address.ts";
import { type ApiKey, type Right, findKey } from "./api-keys.ts";
import { authThrottle } from "./auth-throttle.ts";

export type Caller = { kind: "anonymous" } | { kind: "admin" } | { kind: "key"; key: ApiKey };

const ANONYMOUS: Caller = { kind: "anonymous" };
const throttle = authThrottle();

export async function identifyCaller(
  c: Context,
  db: D1Database | undefined,
  adminToken: string | undefined,
): Promise<Caller> {
  if (c.req.header("authorization") === undefined) return ANONYMOUS;
  await throttle.assertOpen(c);
  let caller: Caller = ANONYMOUS;
  const check = bearerAuth({
    verifyToken: async (token) => {
      if (adminToken && (await timingSafeEqual(adminToken, token))) {
        caller = { kind: "admin" };
        return true;
      }
      if (!db) return false;
      let key: ApiKey | undefined;
      try {
        key = await findKey(db, token);
      } catch (err) {
        throw new HttpError(
          503,
          "cannot check API keys right now; retry later",
          `API key lookup failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      if (key) caller = { kind: "key", key };
      return key !== undefined;
    },
    realm: "narrowdeep",
    invalidAuthenticationHeader: {
      message: { error: "malformed Authorization header: expected Bearer <API key or admin token>" },
    },
    invalidToken: { message: { error: "unknown or revoked API key" } },
  });
  try {
    await check(c, async () => {});
  } catch (err) {
    if (err instanceof HTTPException && err.status < 500) throw (await throttle.failed(c, "bearer token")) ?? err;
    throw err;
  }
  return caller;
}

/** Refuses (403) a caller without the right; `what` names the action, e.g. "X-Force-Arm". */
export function requireRight(caller: Caller, right: Right, what: string): void {
  if (caller.kind === "admin") return;
  if (caller.kind === "anonymous") {
    throw new HttpError(
      403,
      `${what} needs an API key with the "${right}" right, or the admin token: send Authorization: Bearer <key>`,
    );
  }
  if (!caller.key.rights.includes(right))
    throw new HttpError(403, `API key "${caller.key.name}" lacks the "${right}" right that ${what} needs`);
}

/**
 * The name a caller's teacher allowance is counted under: the API key, the admin, else the caller's
 * address (address.ts), never an id the client can change.
 */
export function rateLimitKey(c: Context, caller: Caller): string {
  if (caller.kind === "admin") return "admin";
  if (caller.kind === "key") return `key:${caller.key.id}`;
  return `ip:${callerAddress(c)}`;
}

/**
 * Whose evidence a request is, for the canary's cap per client (canary/figures.ts): a client a trusted
 * caller names stands for itself (an app routing its own users vouches for them); an anonymous
 * request is its address's, where Cloudflare gives one, so that fresh cookies buy no new weight, and
 * else (no edge in front: `wrangler dev`, tests) its signed client id's.
 */
export function evidenceKey(c: Context, caller: Caller, clientId: string): string {
  if (caller.kind === "admin") return `admin:${clientId}`;
  if (caller.kind === "key") return `key:${caller.key.id}:${clientId}`;
  const address = c.req.header("cf-connecting-ip")?.trim();
  return address ? `ip:${address}` : `client:${clientId}`;
}
