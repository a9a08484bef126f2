// X-Request-Id on every response, errors included: the client's own id when it sent a valid one,
// else a new UUID. The id is kept in the context (c.get("requestId")) and stored with the request's
// measurements, so a user can quote it and an operator can find the rows.
//
// An invalid id (too long, or characters outside the allowed set) is replaced, not refused: a
// request id is a diagnostic and must never cost the client its answer.
import type { Context, MiddlewareHandler } from "hono";

export const REQUEST_ID_HEADER = "X-Request-Id";
/** The longest id kept; also the longest a measurement row accepts. */
export const MAX_REQUEST_ID_LENGTH = 100;
/** Letters, digits and - _ . : (UUIDs, ULIDs, W3C trace ids, most proxies' ids). */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]+$/;

export interface RequestIdOptions {
  /** Header read from the request and set on the response. */
  headerName?: string;
  /** Longest id taken from the client. */
  maxLength?: number;
  /** Characters allowed in the client's id (the whole id must match). */
  pattern?: RegExp;
  /** Makes a new id. */
  generate?: () => string;
}

export type RequestIdVariables = { requestId: string };

/** Whether a client's id is kept as it is under these options. */
export function isValidRequestId(id: string, options: Pick<RequestIdOptions, "maxLength" | "pattern"> = {}): boolean {
  return (
    id.length > 0 &&
    id.length <= (options.maxLength ?? MAX_REQUEST_ID_LENGTH) &&
    (options.pattern ?? REQUEST_ID_PATTERN).test(id)
  );
}

/** The id a request is answered with: the one it sent when valid, else a new one. */
export function chooseRequestId(sent: string | null | undefined, options: RequestIdOptions = {}): string {
  return sent !== undefined && sent !== null && isValidRequestId(sent, options)
    ? sent
    : (options.generate ?? (() => crypto.randomUUID()))();
}

/**
 * Sets the request's id in the context (`c.get("requestId")`) and in the response header.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { type RequestIdVariables, requestId } from "./middleware/request-id.ts";
 *
 * const app = new Hono<{ Variables: RequestIdVariables }>();
 * app.use(requestId({ maxLength: 64 }));
 * app.get("/", (c) => c.text(`request ${c.get("requestId")}`));
 * ```
 */
export function requestId(options: RequestIdOptions = {}): MiddlewareHandler<{ Variables: RequestIdVariables }> {
  const headerName = options.headerName ?? REQUEST_ID_HEADER;
  return async function requestId(c, next) {
    const id = chooseRequestId(c.req.header(headerName), options);
    c.set("requestId", id);
    c.header(headerName, id);
    await next();
    // Responses built whole elsewhere (bearer-auth's 401, a handler's own Response) lack it; a
    // fetched Response has immutable headers and is copied first.
    if (c.res.headers.get(headerName) === id) return;
    try {
      c.res.headers.set(headerName, id);
    } catch {
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set(headerName, id);
    }
  };
}

/** The request's id, set by requestId(); a new one where that middleware did not run. */
export function requestIdOf(c: Context): string {
  return (c.get("requestId") as string | undefined) ?? crypto.randomUUID();
}
