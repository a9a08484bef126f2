// Who the client is, for sticky routing: the X-Client-Id header when the caller names itself (an
// app, a load balancer), else a cookie the Worker set on the first visit (Hono's cookie helpers).
import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";

export const CLIENT_HEADER = "x-client-id";
export const CLIENT_COOKIE = "nd_client";
const MAX_ID_LENGTH = 200;
const COOKIE_MAX_AGE_S = 365 * 24 * 3600;

export class ClientIdError extends Error {
  override name = "ClientIdError";
}

/** The client's id; mints one and sets the cookie on the response when the request carries neither. */
export function identifyClient(c: Context): string {
  const named = c.req.header(CLIENT_HEADER);
  if (named !== undefined) {
    const id = named.trim();
    if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new ClientIdError(`${CLIENT_HEADER} must be 1 to ${MAX_ID_LENGTH} characters`);
    return id;
  }
  const fromCookie = getCookie(c, CLIENT_COOKIE);
  if (fromCookie && /^[0-9a-f-]{36}$/.test(fromCookie)) return fromCookie;
  const id = crypto.randomUUID();
  const secure = new URL(c.req.url).protocol === "https:";
  setCookie(c, CLIENT_COOKIE, id, { path: "/", maxAge: COOKIE_MAX_AGE_S, httpOnly: true, sameSite: "Lax", secure });
  return id;
}
