// Request bodies sent with Content-Encoding gzip or deflate (Triton clients can compress theirs),
// inflated with a cap so that a small compressed body cannot become a huge one. Runs after the body
// limit, which bounds the compressed size.
import type { MiddlewareHandler } from "hono";
import { HttpError } from "../http/errors.ts";
import { readCapped } from "./read-capped.ts";

export interface DecompressOptions {
  /** Largest inflated body, in bytes. */
  maxBytes: number;
}

const ENCODINGS = new Set(["gzip", "deflate"]);

/**
 * Inflates a gzip or deflate request body up to `maxBytes`; 415 for another encoding, 400 for a
 * corrupt body, 413 past the cap.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { bodyLimit } from "hono/body-limit";
 * import { decompressBody } from "./middleware/decompress.ts";
 *
 * const app = new Hono();
 * app.use(bodyLimit({ maxSize: 4 * 1024 * 1024 }));
 * app.use(decompressBody({ maxBytes: 16 * 1024 * 1024 }));
 * ```
 */
export const decompressBody = ({ maxBytes }: DecompressOptions): MiddlewareHandler =>
  async function decompressBody(c, next) {
    const encoding = c.req.header("content-encoding")?.trim().toLowerCase();
    if (!encoding || encoding === "identity" || !c.req.raw.body) return next();
    if (!ENCODINGS.has(encoding))
      throw new HttpError(
        415,
        `Content-Encoding ${encoding.slice(0, 40)} is not supported: send gzip, deflate or none`,
      );
    let body: Uint8Array<ArrayBuffer> | undefined;
    try {
      body = await readCapped(
        c.req.raw.body.pipeThrough(new DecompressionStream(encoding as "gzip" | "deflate")),
        maxBytes,
      );
    } catch {
      throw new HttpError(400, `the ${encoding} body is corrupt`);
    }
    if (!body) throw new HttpError(413, `the ${encoding} body inflates beyond the limit of ${maxBytes} bytes`);
    const headers = new Headers(c.req.raw.headers);
    headers.delete("content-encoding");
    headers.delete("content-length");
    c.req.raw = new Request(c.req.raw.url, { method: c.req.raw.method, headers, body });
    await next();
  };
