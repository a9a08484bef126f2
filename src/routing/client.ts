// Who the client is, for sticky routing: the X-Client-Id header when the caller names itself (an
// app, a load balancer), else a cookie the Worker set on the first visit.

export const CLIENT_HEADER = "x-client-id";
export const CLIENT_COOKIE = "nd_client";
const MAX_ID_LENGTH = 200;

export interface ClientIdentity {
  id: string;
  /** A Set-Cookie value to send when the id was minted for this request. */
  setCookie?: string;
}

export class ClientIdError extends Error {
  override name = "ClientIdError";
}

function cookieValue(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function identifyClient(headers: Headers, secure: boolean): ClientIdentity {
  const named = headers.get(CLIENT_HEADER);
  if (named !== null) {
    const id = named.trim();
    if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new ClientIdError(`${CLIENT_HEADER} must be 1 to ${MAX_ID_LENGTH} characters`);
    return { id };
  }
  const fromCookie = cookieValue(headers.get("cookie"), CLIENT_COOKIE);
  if (fromCookie && /^[0-9a-f-]{36}$/.test(fromCookie)) return { id: fromCookie };
  const id = crypto.randomUUID();
  const attributes = ["Path=/", "Max-Age=31536000", "HttpOnly", "SameSite=Lax", ...(secure ? ["Secure"] : [])];
  return { id, setCookie: `${CLIENT_COOKIE}=${id}; ${attributes.join("; ")}` };
}
