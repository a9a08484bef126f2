// Serves a fetch handler (a Hono app's `fetch`) on node:http: the request becomes a web Request, the
// Response is streamed back. Small enough to keep here rather than add a dependency for it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface ServeOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
}

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  if (req.method === "GET" || req.method === "HEAD") return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function toRequest(req: IncomingMessage, body: Buffer | undefined, origin: string): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const init: RequestInit = { method: req.method ?? "GET", headers };
  if (body !== undefined) init.body = new Uint8Array(body.buffer, body.byteOffset, body.byteLength) as Uint8Array<ArrayBuffer>;
  return new Request(new URL(req.url ?? "/", origin), init);
}

async function writeResponse(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, name) => res.appendHeader(name, value));
  if (response.body) {
    const reader = response.body.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) res.write(r.value);
  }
  res.end();
}

export function serve(handler: FetchHandler, options: ServeOptions): Promise<RunningServer> {
  const server = createServer((req, res) => {
    const origin = `http://${req.headers.host ?? `${options.host}:${options.port}`}`;
    readBody(req)
      .then((body) => handler(toRequest(req, body, origin)))
      .then((response) => writeResponse(res, response))
      .catch((err: unknown) => {
        // The handler answers its own errors; this is a broken connection or a bug, so keep the
        // details in the log and out of the reply.
        console.error("teacher: request failed:", err);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader("content-type", "application/json");
        }
        res.end(res.headersSent ? undefined : JSON.stringify({ error: "internal error" }));
      });
  });
  // Keep idle connections open longer than clients do (Node's default is 5 s): a client that reuses a
  // connection the server has just closed sees a reset, which the Worker would count as "unreachable".
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 76_000;
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
