// Bearer-token guard for the admin API (report, configuration, API keys), on Hono's bearer-auth: the
// token is the ADMIN_TOKEN secret, compared in constant time (over SHA-256 digests, so neither the
// content nor the length of the token leaks through timing). A token under 32 characters counts as
// none (access/secrets.ts). Wrong tokens count against the address's allowance of guesses
// (access/auth-throttle.ts): past it, 429.
import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { HTTPException } from "hono/http-exception";
import { timingSafeEqual } from "hono/utils/buffer";
import { type AuthThrottle, authThrottle } from "./auth-throttle.ts";
import { type SecretBindings, usableAdminToken } from "./secrets.ts";

export interface AdminAuthOptions {
  /** Where the expected token comes from; default: the ADMIN_TOKEN binding. */
  token?: (c: Context) => string | undefined;
  /** Realm named in WWW-Authenticate. */
  realm?: string;
  /** Counts wrong tokens per address; default: on the AUTH_RATE_LIMITER binding and D1. */
  throttle?: AuthThrottle;
}

export const ADMIN_REALM = "narrowdeep-admin";

export const adminTokenOf = (c: Context): string | undefined => usableAdminToken((c.env ?? {}) as SecretBindings);

/** Whether `candidate` is the admin token (constant time); false when no token is set. */
export async function isAdminToken(c: Context, candidate: string | undefined): Promise<boolean> {
  const expected = adminTokenOf(c);
  return expected !== undefined && candidate !== undefined && (await timingSafeEqual(expected, candidate));
}

/** Whether the request carries the admin token (for optional privileges, such as error details). */
export async function isAdminRequest(c: Context): Promise<boolean> {
  return isAdminToken(c, /^Bearer +(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1]);
}

/**
 * Lets a request through only with `Authorization: Bearer <ADMIN_TOKEN>`; 401 otherwise, 429 once
 * the address has used up its guesses.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { adminAuth } from "./access/admin-auth.ts";
 *
 * const admin = new Hono();
 * admin.use("*", adminAuth({ realm: "narrowdeep-admin" }));
 * admin.get("/report", (c) => c.json({ ok: true }));
 * ```
 */
export function adminAuth(options: AdminAuthOptions = {}): MiddlewareHandler {
  const realm = options.realm ?? ADMIN_REALM;
  const tokenOf = options.token ?? adminTokenOf;
  const throttle = options.throttle ?? authThrottle();
  return async function adminAuth(c, next) {
    const expected = tokenOf(c);
    if (!expected) {
      // Which secret is missing is for the log, not for whoever knocks.
      console.error("admin API disabled: the ADMIN_TOKEN secret is not set, or too short");
      return c.json({ error: "the admin API is disabled on this server" }, 503);
    }
    const presented = c.req.header("authorization") !== undefined;
    if (presented) await throttle.assertOpen(c);
    const check = bearerAuth({
      token: expected,
      realm,
      noAuthenticationHeader: { message: { error: "missing Authorization: Bearer <admin token>" } },
      invalidAuthenticationHeader: {
        message: { error: "malformed Authorization header: expected Bearer <admin token>" },
      },
      invalidToken: { message: { error: "invalid admin token" } },
    });
    let passed = false;
    try {
      return await check(c, async () => {
        passed = true;
        await next();
      });
    } catch (err) {
      // Only bearer-auth's own refusal is a guess; errors from the routes behind it pass through.
      if (!passed && presented && err instanceof HTTPException && err.status < 500)
        throw (await throttle.failed(c, "admin token")) ?? err;
      throw err;
    }
  };
}
