// Bounds the work the teacher host takes on: at most `maxInFlight` requests run at once, `maxQueued`
// more wait their turn, and anything beyond that is answered at once with 503 and Retry-After, so a
// flood costs the host a short answer per request rather than work for every waiting one. A slot is
// taken after the body has arrived (body.ts), so a client slow to send holds none.
import type { MiddlewareHandler } from "hono";

export interface ConcurrencyOptions {
  /** Requests handled at once; default 8. */
  maxInFlight?: number;
  /** Requests waiting for a slot; default 64. */
  maxQueued?: number;
  /** Seconds a refused client is told to wait; default 1. */
  retryAfterSeconds?: number;
  /** Which requests count; default every POST (inference, classification), so probes stay cheap. */
  applies?: (method: string, path: string) => boolean;
  /** Told the numbers running and waiting whenever either changes (the metrics' queue depth). */
  onChange?: (state: { running: number; waiting: number }) => void;
}

export function concurrencyLimit(options: ConcurrencyOptions = {}): MiddlewareHandler {
  const maxInFlight = options.maxInFlight ?? 8;
  const maxQueued = options.maxQueued ?? 64;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const applies = options.applies ?? ((method: string) => method === "POST");
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const changed = () => options.onChange?.({ running: inFlight, waiting: waiting.length });

  const release = () => {
    const nextInLine = waiting.shift();
    if (nextInLine) nextInLine();
    else inFlight--;
    changed();
  };

  return async function concurrencyLimit(c, next) {
    if (!applies(c.req.method, c.req.path)) return next();
    if (inFlight >= maxInFlight) {
      if (waiting.length >= maxQueued) {
        c.header("Retry-After", retryAfter);
        return c.json(
          {
            error: `the teacher host is busy (${inFlight} requests running, ${waiting.length} waiting); retry after ${retryAfter} s`,
          },
          503,
        );
      }
      // The slot is handed over by release(): inFlight stays as it is.
      const turn = new Promise<void>((resolve) => waiting.push(resolve));
      changed();
      await turn;
    } else {
      inFlight++;
      changed();
    }
    try {
      await next();
    } finally {
      release();
    }
  };
}
