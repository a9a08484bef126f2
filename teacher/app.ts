// The teacher host's HTTP API: the Worker's own app (Open Inference Protocol at /v2, classification at
// /v1) over a store holding the teacher, plus the execution provider in the model's metadata and in
// an X-Execution-Provider header, so a caller can see whether the GPU is doing the work.
import { Hono } from "hono";
import { createApp, notFoundJson } from "../src/app.ts";
import type { ModelStore } from "../src/models/store.ts";
import type { ExecutionProvider } from "./engine.ts";
import { type FaultOptions, faults } from "./faults.ts";

export interface TeacherAppOptions {
  store: ModelStore;
  provider: ExecutionProvider;
  server: { name: string; version: string };
  faults?: FaultOptions;
}

export function createTeacherApp(options: TeacherAppOptions): Hono {
  const app = new Hono();
  app.use(async (c, next) => {
    await next();
    c.header("X-Execution-Provider", options.provider);
  });
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
  app.route("/", createApp({ store: options.store, server: options.server }));
  app.notFound(notFoundJson);
  return app;
}
