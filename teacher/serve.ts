// Serves a fetch handler (a Hono app's `fetch`) on Node with @hono/node-server. It hands the app the
// request body as a stream, so the app's body limit applies while the body arrives (a 100 MB upload
// is refused after its headers, not after it is buffered), and after the answer it drains or cuts
// whatever body the app left unread. Slow clients are cut off by Node's own timers: the headers must
// arrive within `headersTimeoutMs` and the whole request within `requestTimeoutMs` (408, then close).
import { createAdaptorServer } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface ServeOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Time for a request's headers to arrive; default 10 s. */
  headersTimeoutMs?: number;
  /** Time for a whole request (headers and body) to arrive; default 30 s. Answering takes what it takes. */
  requestTimeoutMs?: number;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export function serve(handler: FetchHandler, options: ServeOptions): Promise<RunningServer> {
  const server = createAdaptorServer({
    fetch: (request: Request) => handler(request),
    hostname: options.host,
    // Leave the process's own Request and Response in place: the app builds them too.
    overrideGlobalObjects: false,
    // Node checks the two timeouts every 30 s by default, which would let a slow client overstay by that much.
    serverOptions: { connectionsCheckingInterval: 250 },
  }) as Server;
  // Keep idle connections open longer than clients do (Node's default is 5 s): a client that reuses a
  // connection the server has just closed sees a reset, which the Worker would count as "unreachable".
  server.keepAliveTimeout = 75_000;
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  server.requestTimeout = requestTimeout;
  // Node refuses a headers timeout longer than the request's.
  server.headersTimeout = Math.min(options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS, requestTimeout);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      const host = options.host.includes(":") ? `[${options.host}]` : options.host;
      resolve({
        server,
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}
