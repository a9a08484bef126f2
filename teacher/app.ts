// The teacher host's HTTP API: the Worker's own app (Open Inference Protocol at /v2, classification at
// /v1) over a store holding the teacher, plus the execution provider in the model's metadata and in
// an X-Execution-Provider header, so a caller can see whether the GPU is doing the work.
// In front of it, in this order: the request metrics (so refusals count), the token check (nothing is
// read from a caller without the token), reading the whole body under its limit (so a slow sender
// holds no slot), the concurrency bound, then fault injection (so a delayed request holds its slot,
// as a slow model would). GET /metrics sits behind the token like everything but the health probes.
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { createApp, notFoundJson } from "../src/app.ts";
import type { ModelStore } from "../src/models/store.ts";
import { DEFAULT_LIMITS, type Limits } from "../src/options.ts";
import { type TeacherAuthOptions, teacherAuth } from "./auth.ts";
import { bufferBody } from "./body.ts";
import { type ConcurrencyOptions, concurrencyLimit } from "./concurrency.ts";
import type { ExecutionProvider } from "./engine.ts";
import { type FaultOptions, faults } from "./faults.ts";
import type { TeacherMetrics } from "./metrics.ts";

export interface TeacherAppOptions {
  store: ModelStore;
  provider: ExecutionProvider;
  server: { name: string; version: string };
  /** The shared token; absent only when the host was started with --no-auth. */
  auth?: TeacherAuthOptions;
  concurrency?: ConcurrencyOptions;
  limits?: Partial<Limits>;
  faults?: FaultOptions;
  /** Served at GET /metrics, and fed by every request; none when absent. */
  metrics?: TeacherMetrics;
}

export function createTeacherApp(options: TeacherAppOptions): Hono {
  const app = new Hono();
  const { metrics } = options;
  if (metrics) app.use(metrics.requests());
  app.use(async (c, next) => {
    await next();
    c.header("X-Execution-Provider", options.provider);
  });
  if (options.auth) app.use(teacherAuth(options.auth));
  app.use(bufferBody({ maxBytes: options.limits?.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes }));
  const told = options.concurrency?.onChange;
  app.use(
    concurrencyLimit({
      ...options.concurrency,
      onChange: (state) => {
        metrics?.slots(state);
        told?.(state);
      },
    }),
  );
  if (options.faults) app.use(faults(options.faults));
  if (metrics) app.get("/metrics", metrics.handler);
  for (const path of ["/v2/models/:name", "/v2/models/:name/versions/:version"]) {
    app.get(path, async (c, next) => {
      await next();
      if (c.res.status !== 200) return;
      const metadata = (await c.res.json()) as Record<string, unknown>;
      // Hono carries the first response's other headers over to this one.
      c.res = Response.json({ ...metadata, parameters: { execution_provider: options.provider } });
    });
  }
  app.route(
    "/",
    createApp({ store: options.store, server: options.server, ...(options.limits ? { limits: options.limits } : {}) }),
  );
  app.notFound(notFoundJson);
  // bearer-auth answers with an HTTPException carrying its own response (401 and WWW-Authenticate).
  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    console.error(err);
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
