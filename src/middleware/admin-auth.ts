// Bearer-token guard for the admin API (report, configuration). The token is a Worker secret; the
// comparison runs in constant time over SHA-256 digests, so neither the content nor the length of
// the token leaks through timing. (Plain code rather than Workers' crypto.subtle.timingSafeEqual, so
// the app also type-checks and runs under Node.)
import type { Context, MiddlewareHandler } from "hono";

export interface AdminAuthOptions<E extends { Bindings: object }> {
  /** Where the expected token comes from; default: the ADMIN_TOKEN binding. */
  token?: (c: Context<E>) => string | undefined;
  /** Realm named in WWW-Authenticate. */
  realm?: string;
}

async function sha256(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/** Compares every byte of the two digests whatever they hold, so the time taken says nothing. */
export async function tokensEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = (await Promise.all([sha256(given), sha256(expected)])).map((d) => new Uint8Array(d)) as [Uint8Array, Uint8Array];
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function adminAuth<E extends { Bindings: object }>(options: AdminAuthOptions<E> = {}): MiddlewareHandler<E> {
  const realm = options.realm ?? "narrowdeep-admin";
  const tokenOf = options.token ?? ((c: Context<E>) => (c.env as { ADMIN_TOKEN?: string }).ADMIN_TOKEN);
  return async (c, next) => {
    const expected = tokenOf(c);
    if (!expected) return c.json({ error: "admin API disabled: the ADMIN_TOKEN secret is not set" }, 503);
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !(await tokensEqual(match[1]!, expected))) {
      c.header("WWW-Authenticate", `Bearer realm="${realm}"`);
      return c.json({ error: match ? "invalid admin token" : "missing Authorization: Bearer <ADMIN_TOKEN>" }, 401);
    }
    await next();
  };
}
