// The edge API as a Hono app, built from options so tests (and other hosts) can make one from any
// model store. Middleware first (timing, CORS, body limit, decompression), then the route modules.
//
// Where new routes register: write `src/routes/<name>.ts` exporting `<name>Routes(ctx: RouteContext)`
// that returns a Hono app, and mount it below with `app.route(prefix, ...)`. Routes throw HttpError
// (src/http/errors.ts) for every bad input; onError turns it into `{"error": "..."}`.
import { Hono, type NotFoundHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { timing } from "hono/timing";
import { ImageError } from "../models/image/errors.ts";
import { HttpError } from "./http/errors.ts";
import { isAdminRequest } from "./access/admin-auth.ts";
import { openApiDocument } from "./api/openapi.ts";
import { decompressBody } from "./middleware/decompress.ts";
import { REQUEST_ID_HEADER, requestId } from "./middleware/request-id.ts";
import { requestLog } from "./middleware/request-log.ts";
import { type AppOptions, DEFAULT_LIMITS } from "./options.ts";
import { abRouter, compareRoutes, teachersOf } from "./routes/ab.ts";
import { adminRoutes } from "./routes/admin.ts";
import { canaryRoutes } from "./routes/canary.ts";
import { classifyRoutes } from "./routes/classify.ts";
import { dashboardRoutes } from "./routes/dashboard.ts";
import type { RouteContext } from "./routes/context.ts";
import { keyRoutes } from "./routes/keys.ts";
import { oipRoutes } from "./routes/oip.ts";

/** A 404 in the API's error shape; also for apps that mount this one (the teacher host). */
export const notFoundJson: NotFoundHandler = (c) =>
  c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404);

const DEFAULT_SERVER = { name: "narrowdeep", version: "0.1.0" };

/**
 * The API over `options.store`, with the limits, CORS origins, A/B routing, dashboard and request log
 * that `options` turns on (src/options.ts).
 *
 * @example
 * ```ts
 * import { createApp } from "./app.ts";
 * import { ModelStore } from "./models/store.ts";
 * import { ortWebEngine } from "./models/ort-web.ts";
 *
 * const store = new ModelStore(manifest, modelFiles, ortWebEngine);
 * const app = createApp({
 *   store,
 *   limits: { maxBatch: 16 },
 *   corsOrigins: ["https://example.com"],
 *   requestLog: false,
 * });
 * const res = await app.request("/v2/health/ready");
 * ```
 */
export function createApp(options: AppOptions): Hono {
  const ctx: RouteContext = {
    store: options.store,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    server: options.server ?? DEFAULT_SERVER,
  };
  const app = new Hono();

  // First, so that every response carries the id, errors and CORS preflights included.
  app.use(requestId());
  // Next, so that its line has the id, and sees every answer and every error the others make.
  if (options.requestLog !== false) app.use(requestLog(options.requestLog));
  const origins = options.corsOrigins ?? [];
  app.use(timing({ totalDescription: "total", crossOrigin: origins.includes("*") ? "*" : origins.length > 0 }));
  if (origins.length > 0) {
    app.use(
      cors({
        origin: origins.includes("*") ? "*" : origins,
        allowMethods: ["GET", "POST", "PATCH", "OPTIONS"],
        allowHeaders: [
          "Content-Type",
          "Inference-Header-Content-Length",
          "Authorization",
          "X-Client-Id",
          "X-Force-Arm",
          REQUEST_ID_HEADER,
        ],
        exposeHeaders: [
          "Server-Timing",
          "X-Model-Name",
          "X-Model-Version",
          "Inference-Header-Content-Length",
          "X-Arm",
          "X-Teacher-Fault",
          "Retry-After",
          REQUEST_ID_HEADER,
        ],
        maxAge: 600,
      }),
    );
  }
  app.use(
    bodyLimit({
      maxSize: ctx.limits.maxBodyBytes,
      onError: (c) => c.json({ error: `the body is over the limit of ${ctx.limits.maxBodyBytes} bytes` }, 413),
    }),
  );
  app.use(decompressBody({ maxBytes: ctx.limits.maxBodyBytes }));

  app.get("/openapi.json", (c) => c.json(openApiDocument()));
  app.route("/v2", oipRoutes(ctx));
  // One POST /v1/classify: routed between student and teacher when the app has A/B routing and a
  // teacher is configured, the default student alone otherwise.
  const ab = options.abRouting ? abRouter(ctx, options.abRouting) : undefined;
  app.route("/v1", classifyRoutes(ctx, ab));
  if (options.abRouting && ab) {
    app.route("/v1", compareRoutes(ab));
    app.route("/v1", adminRoutes(ctx, teachersOf(options.abRouting.teachers)));
    app.route("/v1", canaryRoutes(ctx));
    app.route("/v1", keyRoutes());
    if (options.dashboard) app.route("/dashboard", dashboardRoutes({ ...options.dashboard, base: "/dashboard" }));
  }

  app.notFound(notFoundJson);
  app.onError(async (err, c) => {
    if (err instanceof HttpError) {
      if (err.detail === undefined) return c.json({ error: err.message }, err.status);
      // What is misconfigured or broken goes to the log (the request's line), and to the admin; not to anyone else.
      return c.json({ error: err.message, ...((await isAdminRequest(c)) ? { detail: err.detail } : {}) }, err.status);
    }
    // The shared image decoder's refusals (models/image/) carry the status they are answered with.
    if (err instanceof ImageError) return c.json({ error: err.message }, err.status);
    // Middleware such as bearer-auth builds its own answer (with WWW-Authenticate).
    if (err instanceof HTTPException && err.res) return err.getResponse();
    if (err instanceof HTTPException && err.status < 500)
      return c.json({ error: err.message || "bad request" }, err.status);
    // Details go to the log (the request's line: name, message, stack), never to the client.
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
