// Guessing at secrets, throttled per address: every failed sign-in and every bad bearer token (the
// admin token, an API key) takes one unit of the address's allowance on the Rate Limiting binding
// AUTH_RATE_LIMITER (wrangler.toml: 20 a minute). The guess that finds the allowance spent gets 429,
// and the address is blocked for the binding's period: every credential it presents, right or wrong,
// gets 429 until then. The block lives in D1 (auth_blocks), so every isolate honours it; without D1
// only the wrong guesses over the limit are refused. Every failure is logged with the request id.
import type { D1Database } from "@cloudflare/workers-types";
import type { Context } from "hono";
import { HttpError } from "../http/errors.ts";
import { requestIdOf } from "../middleware/request-id.ts";
import type { RateLimiter } from "./rate-limiter.ts";
import { callerAddress } from "./address.ts";

/** The binding's period (wrangler.toml [[ratelimits]] AUTH_RATE_LIMITER): how long a block lasts. */
export const AUTH_PERIOD_S = 60;

export interface AuthThrottleBindings {
  AUTH_RATE_LIMITER?: RateLimiter;
  DB?: D1Database;
}

export interface AuthThrottleOptions {
  /** Seconds an address stays blocked; default AUTH_PERIOD_S. */
  blockSeconds?: number;
  /** The clock, in milliseconds since the epoch. */
  now?: () => number;
}

function tooMany(c: Context, seconds: number): HttpError {
  c.header("Retry-After", String(seconds));
  return new HttpError(429, `too many failed attempts from this address; retry in ${seconds} s`);
}

export interface AuthThrottle {
  /** Throws 429 while the request's address is blocked; call before checking a credential. */
  assertOpen(c: Context): Promise<void>;
  /**
   * Records a failed attempt (`what`: "sign-in", "admin token", ...): logs it and takes one unit of the
   * address's allowance. Returns the 429 to throw when the allowance is spent, else undefined.
   */
  failed(c: Context, what: string): Promise<HttpError | undefined>;
}

export function authThrottle(options: AuthThrottleOptions = {}): AuthThrottle {
  const blockMs = (options.blockSeconds ?? AUTH_PERIOD_S) * 1000;
  const now = options.now ?? Date.now;
  const env = (c: Context) => (c.env ?? {}) as AuthThrottleBindings;
  return {
    async assertOpen(c) {
      const { DB: db, AUTH_RATE_LIMITER: limiter } = env(c);
      if (!db || !limiter) return;
      const row = await db
        .prepare("SELECT until FROM auth_blocks WHERE address = ?1")
        .bind(callerAddress(c))
        .first<{ until: number }>();
      const left = row ? row.until - now() : 0;
      if (left > 0) throw tooMany(c, Math.ceil(left / 1000));
    },
    async failed(c, what) {
      const address = callerAddress(c);
      console.warn(JSON.stringify({ event: "auth_failure", what, address, requestId: requestIdOf(c) }));
      const { DB: db, AUTH_RATE_LIMITER: limiter } = env(c);
      if (!limiter) return undefined;
      let allowed: boolean;
      try {
        allowed = (await limiter.limit({ key: `auth:${address}` })).success;
      } catch (err) {
        // Unknown is refused: a guess that cannot be counted is not let through.
        console.error(
          JSON.stringify({
            event: "auth_rate_limiter_failed",
            refused: address,
            requestId: requestIdOf(c),
            error: err instanceof Error ? err.message : String(err),
          }),
        );
        allowed = false;
      }
      if (allowed) return undefined;
      const until = now() + blockMs;
      if (db) {
        await db.batch([
          db
            .prepare(
              "INSERT INTO auth_blocks (address, until) VALUES (?1, ?2) ON CONFLICT (address) DO UPDATE SET until = MAX(until, ?2)",
            )
            .bind(address, until),
          // Blocks that ran out are of no use: the table holds only the addresses blocked now.
          db.prepare("DELETE FROM auth_blocks WHERE until <= ?1").bind(now()),
        ]);
      }
      console.warn(
        JSON.stringify({ event: "auth_blocked", address, blockSeconds: blockMs / 1000, requestId: requestIdOf(c) }),
      );
      return tooMany(c, blockMs / 1000);
    },
  };
}
