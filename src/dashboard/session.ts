// The dashboard's sign-in session: a signed cookie (Hono's setSignedCookie, HMAC-SHA256) that holds
// the session's id, when it expires and a random CSRF token. HttpOnly (page scripts never see it),
// SameSite=Strict, scoped to the dashboard's path, Secure over HTTPS. The expiry lives inside the
// signed value as well as in Max-Age, so a client cannot stretch a session by keeping the cookie
// longer. Signing out revokes the session in D1 (revoked_sessions, until it would have expired): a
// copy of the cookie replayed afterwards is refused, although its signature still holds.
//
// The signing key is derived from ADMIN_TOKEN: rotating the token ends every session.
import type { D1Database } from "@cloudflare/workers-types";
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
  /** Random; what sign-out revokes. */
  id: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  /** Sent back with every change the page makes (a form field); see checkCsrfToken. */
  csrfToken: string;
}

export interface SessionCookies {
  /** Sets a fresh session cookie and returns the session. */
  start(c: Context, adminToken: string): Promise<Session>;
  /** The request's session, or undefined when it has none, a forged, expired or revoked one. */
  read(c: Context, adminToken: string, db: D1Database): Promise<Session | undefined>;
  /** Revokes the session and clears the cookie. */
  end(c: Context, session: Session, db: D1Database): Promise<void>;
}

export const DEFAULT_SESSION_TTL_S = 8 * 3600;

// Domain separation: the same ADMIN_TOKEN must not also be a key that signs anything else.
const signingKey = (adminToken: string) => `narrowdeep dashboard session\u0000${adminToken}`;

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

export function sessionCookies(options: SessionOptions = {}): SessionCookies {
  const name = options.cookieName ?? "narrowdeep_dashboard";
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_SESSION_TTL_S;
  const path = options.path ?? "/dashboard";
  const now = options.now ?? Date.now;
  const secure = (c: Context) => new URL(c.req.url).protocol === "https:";
  return {
    async start(c, adminToken) {
      const session = { id: randomToken(), expiresAt: now() + ttlSeconds * 1000, csrfToken: randomToken() };
      await setSignedCookie(
        c,
        name,
        `${session.expiresAt}.${session.csrfToken}.${session.id}`,
        signingKey(adminToken),
        {
          httpOnly: true,
          sameSite: "Strict",
          secure: secure(c),
          path,
          maxAge: ttlSeconds,
        },
      );
      return session;
    },
    async read(c, adminToken, db) {
      const value = await getSignedCookie(c, signingKey(adminToken), name);
      const m = typeof value === "string" ? /^(\d{1,16})\.([\w-]{16,64})\.([\w-]{16,64})$/.exec(value) : null;
      if (!m) return undefined;
      const session = { expiresAt: Number(m[1]), csrfToken: m[2]!, id: m[3]! };
      if (session.expiresAt <= now()) return undefined;
      const revoked = await db
        .prepare("SELECT 1 AS revoked FROM revoked_sessions WHERE id = ?1")
        .bind(session.id)
        .first<{ revoked: number }>();
      return revoked ? undefined : session;
    },
    async end(c, session, db) {
      await db.batch([
        db
          .prepare("INSERT INTO revoked_sessions (id, expires_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING")
          .bind(session.id, session.expiresAt),
        // A revoked session past its expiry is refused by its cookie alone: its row can go.
        db.prepare("DELETE FROM revoked_sessions WHERE expires_at <= ?1").bind(now()),
      ]);
      deleteCookie(c, name, { path, secure: secure(c), httpOnly: true, sameSite: "Strict" });
    },
  };
}

/** Whether a submitted CSRF token is the session's (compared in constant time). */
export async function checkCsrfToken(session: Session, submitted: unknown): Promise<boolean> {
  return typeof submitted === "string" && submitted.length > 0 && (await timingSafeEqual(session.csrfToken, submitted));
}
