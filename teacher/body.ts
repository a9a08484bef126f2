// Reads each request's body whole, up to a limit, before anything downstream (the concurrency bound,
// the model) sees the request: a client that trickles its body then holds only its own connection and
// its own bytes, never a slot that a well-behaved request is waiting for. A Content-Length over the
// limit is refused before a byte is read, a chunked body at the first byte past it.
import type { MiddlewareHandler } from "hono";
import { readCapped } from "../src/middleware/read-capped.ts";

export interface BufferBodyOptions {
  /** Largest body accepted, in bytes. */
  maxBytes: number;
}

export function bufferBody(options: BufferBodyOptions): MiddlewareHandler {
  const { maxBytes } = options;
  const tooLarge = `the body is over the limit of ${maxBytes} bytes`;
  return async function bufferBody(c, next) {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const declared = raw.headers.get("content-length");
    if (declared !== null && !raw.headers.has("transfer-encoding") && Number(declared) > maxBytes)
      return c.json({ error: tooLarge }, 413);
    let body: Uint8Array<ArrayBuffer> | undefined;
    try {
      body = await readCapped(raw.body, maxBytes);
    } catch (err) {
      // The client went away or broke the framing; nobody may be listening, but say why.
      return c.json(
        { error: `the request body could not be read: ${err instanceof Error ? err.message : String(err)}` },
        400,
      );
    }
    if (!body) return c.json({ error: tooLarge }, 413);
    // The same request with its body in memory: the routes read it as they would the stream. (Built
    // afresh: @hono/node-server's own request object cannot be handed to the Request constructor.)
    c.req.raw = new Request(raw.url, { method: raw.method, headers: raw.headers, body });
    return next();
  };
}
