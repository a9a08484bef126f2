// Who the client is, for sticky routing. An anonymous client is whoever the Worker says it is: an id
// the Worker drew and signed (HMAC-SHA256, Hono's signed cookies) in the nd_client cookie. It can
// drop the cookie and get a new draw, but it cannot choose its id, so it cannot choose its arm.
// Trusted callers (an API key, the admin) may name their client in X-Client-Id: an app or a proxy
// that routes its own users.
//
// The signing key is the CLIENT_ID_SECRET secret, else one derived from ADMIN_TOKEN (rotating the
// admin token then gives every client a new draw).
import type { Context } from "hono";
import { getSignedCookie, setSignedCookie } from "hono/cookie";
import { serializeSigned } from "hono/utils/cookie";

export const CLIENT_HEADER = "x-client-id";
export const CLIENT_COOKIE = "nd_client";
const MAX_ID_LENGTH = 200;
const COOKIE_MAX_AGE_S = 365 * 24 * 3600;

export class ClientIdError extends Error {
  override name = "ClientIdError";
}

// Domain separation: the secret may be the admin token, which also signs dashboard sessions.
const cookieKey = (secret: string) => `narrowdeep client id\u0000${secret}`;
const tagKey = (secret: string) => `narrowdeep client tag\u0000${secret}`;

/** The Cookie header value that carries `id` signed with `secret` (what the Worker sets). */
export async function signedClientCookie(id: string, secret: string): Promise<string> {
  return (await serializeSigned(CLIENT_COOKIE, id, cookieKey(secret))).split(";")[0]!;
}

/**
 * The client's id. `trusted`: the caller proved an API key or the admin token, and X-Client-Id names
 * its client. Otherwise the signed cookie's id; a fresh id, set in the cookie, when the request has no
 * valid one. An anonymous X-Client-Id is ignored.
 */
export async function identifyClient(c: Context, secret: string, trusted: boolean): Promise<string> {
  const named = c.req.header(CLIENT_HEADER);
  if (trusted && named !== undefined) {
    const id = named.trim();
    if (id.length === 0 || id.length > MAX_ID_LENGTH)
      throw new ClientIdError(`${CLIENT_HEADER} must be 1 to ${MAX_ID_LENGTH} characters`);
    return id;
  }
  // Only the Worker (the secret's holder) signs: a valid signature is an id it issued.
  const fromCookie = await getSignedCookie(c, cookieKey(secret), CLIENT_COOKIE);
  if (typeof fromCookie === "string" && fromCookie.length > 0 && fromCookie.length <= MAX_ID_LENGTH) return fromCookie;
  const id = crypto.randomUUID();
  const secure = new URL(c.req.url).protocol === "https:";
  await setSignedCookie(c, CLIENT_COOKIE, id, cookieKey(secret), {
    path: "/",
    maxAge: COOKIE_MAX_AGE_S,
    httpOnly: true,
    sameSite: "Lax",
    secure,
  });
  return id;
}

/**
 * An opaque tag for a client (access/caller.ts evidenceKey), as measurement rows store it: 16 hex
 * digits of an HMAC, so that neither addresses nor ids reach D1 and nobody can compute a tag without
 * the secret.
 */
export async function clientTag(key: string, secret: string): Promise<string> {
  const hmac = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(tagKey(secret)),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(key)));
  return Array.from(mac.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}
