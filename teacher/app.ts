// The teacher host's HTTP API: the Worker's own app (Open Inference Protocol at /v2, classification at
// /v1) over a store holding the teacher, plus the execution provider in the model's metadata and in
// an X-Execution-Provider header, so a caller can see whether the GPU is doing the work.
// In front of it, in this order: the token check (nothing is read from a caller without the token),
// the concurrency bound, then fault injection (so a delayed request holds its slot, as a slow model
// would); the app's own body limit applies while the body is read.
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { createApp, notFoundJson } from "../src/app.ts";
import type { ModelStore } from "../src/models/store.ts";
import type { Limits } from "../src/options.ts";
import { type TeacherAuthOptions, teacherAuth } from "./auth.ts";
import { type ConcurrencyOptions, concurrencyLimit } from "./concurrency.ts";
import type { ExecutionProvider } from "./engine.ts";
import { type FaultOptions, faults } from "./faults.ts";

export interface TeacherAppOptions {
  store: ModelStore;
  provider: ExecutionProvider;
  server: { name: string; version: string };
  /** The shared token; absent only when the host was started with --no-auth. */
  auth?: TeacherAuthOptions;
  concurrency?: ConcurrencyOptions;
  limits?: Partial<Limits>;
  faults?: FaultOptions;
}

export function createTeacherApp(options: TeacherAppOptions): Hono {
  const app = new Hono();
  app.use(async (c, next) => {
    await next();
    c.header("X-Execution-Provider", options.provider);
  });
  if (options.auth) app.use(teacherAuth(options.auth));
  app.use(concurrencyLimit(options.concurrency));
  if (options.faults) app.use(faults(options.faults));
  for (const path of ["/v2/models/:name", "/v2/models/:name/versions/:version"]) {
    app.get(path, async (c, next) => {
      await next();
      if (c.res.status !== 200) return;
      const metadata = (await c.res.json()) as Record<string, unknown>;
      // Hono carries the first response's other headers over to this one.
      c.res = Response.json({ ...metadata, parameters: { execution_provider: options.provider } });
    });
  }
  app.route("/", createApp({ store: options.store, server: options.server, ...(options.limits ? { limits: options.limits } : {}) }));
  app.notFound(notFoundJson);
  // bearer-auth answers with an HTTPException carrying its own response (401 and WWW-Authenticate).
  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    console.error(err);
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}
