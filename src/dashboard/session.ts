// The dashboard's sign-in session: a signed cookie (Hono's setSignedCookie, HMAC-SHA256) that holds
// when it expires and a random CSRF token. HttpOnly (page scripts never see it), SameSite=Strict,
// scoped to the dashboard's path, Secure over HTTPS. The expiry lives inside the signed value as well
// as in Max-Age, so a client cannot stretch a session by keeping the cookie longer.
//
// The signing key is derived from ADMIN_TOKEN: rotating the token ends every session.
import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { timingSafeEqual } from "hono/utils/buffer";

export interface SessionOptions {
  /** The cookie's name; default "narrowdeep_dashboard". */
  cookieName?: string;
  /** How long a sign-in lasts; default 8 hours. */
  ttlSeconds?: number;
  /** The path the cookie is sent to; default "/dashboard". */
  path?: string;
  /** The clock, in milliseconds since the epoch (tests move it). */
  now?: () => number;
}

export interface Session {
  /** Milliseconds since the epoch. */
  expiresAt: number;
  /** Sent back with every change the page makes (a form field); see checkCsrfToken. */
  csrfToken: string;
}

export interface SessionCookies {
  /** Sets a fresh session cookie and returns the session. */
  start(c: Context, adminToken: string): Promise<Session>;
  /** The request's session, or undefined when it has none, a forged one or an expired one. */
  read(c: Context, adminToken: string): Promise<Session | undefined>;
  end(c: Context): void;
}

export const DEFAULT_SESSION_TTL_S = 8 * 3600;

// Domain separation: the same ADMIN_TOKEN must not also be a key that signs anything else.
const signingKey = (adminToken: string) => `narrowdeep dashboard session\u0000${adminToken}`;

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function sessionCookies(options: SessionOptions = {}): SessionCookies {
  const name = options.cookieName ?? "narrowdeep_dashboard";
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_SESSION_TTL_S;
  const path = options.path ?? "/dashboard";
  const now = options.now ?? Date.now;
  const secure = (c: Context) => new URL(c.req.url).protocol === "https:";
  return {
    async start(c, adminToken) {
      const session = { expiresAt: now() + ttlSeconds * 1000, csrfToken: randomToken() };
      await setSignedCookie(c, name, `${session.expiresAt}.${session.csrfToken}`, signingKey(adminToken), {
        httpOnly: true,
        sameSite: "Strict",
        secure: secure(c),
        path,
        maxAge: ttlSeconds,
      });
      return session;
    },
    async read(c, adminToken) {
      const value = await getSignedCookie(c, signingKey(adminToken), name);
      const m = typeof value === "string" ? /^(\d{1,16})\.([\w-]{16,64})$/.exec(value) : null;
      if (!m) return undefined;
      const expiresAt = Number(m[1]);
      return expiresAt > now() ? { expiresAt, csrfToken: m[2]! } : undefined;
    },
    end(c) {
      deleteCookie(c, name, { path, secure: secure(c), httpOnly: true, sameSite: "Strict" });
    },
  };
}

/** Whether a submitted CSRF token is the session's (compared in constant time). */
export async function checkCsrfToken(session: Session, submitted: unknown): Promise<boolean> {
  return typeof submitted === "string" && submitted.length > 0 && (await timingSafeEqual(session.csrfToken, submitted));
}
