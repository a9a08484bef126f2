// The caller's address as Cloudflare gives it: CF-Connecting-IP, which Cloudflare's edge sets on every
// request it forwards to a Worker, replacing whatever the client sent. Allowances are counted per
// address (teacher calls, wrong guesses), never per an id the client can change. Where no edge sets
// the header (`wrangler dev`, a test), it is absent, and then every anonymous caller shares the one
// address "unknown"; or it is whatever the client sent (docs/ab-safety.md).
import type { Context } from "hono";

export const UNKNOWN_ADDRESS = "unknown";

export function callerAddress(c: Context): string {
  return c.req.header("cf-connecting-ip")?.trim() || UNKNOWN_ADDRESS;
}
