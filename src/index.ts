// The Worker: the students bundled from models/ (see scripts/bundle-models.ts), onnxruntime-web as the
// engine, limits and CORS from the environment. The app is built on the first request, not at module
// load: start-up stays well under the one second Workers allow, and the env is known by then.
import type { Hono } from "hono";
import { modelFiles, manifestJson } from "../models/bundle.ts";
import { ManifestError, parseManifest } from "../models/schema.ts";
import pkg from "../package.json";
import { createApp } from "./app.ts";
import { ModelStore, studentsOnly } from "./models/store.ts";
import { ortWebEngine } from "./models/ort-web.ts";
import { ConfigError, optionsFromEnv } from "./options.ts";

let app: Hono | undefined;

function build(env: Record<string, unknown>): Hono {
  const manifest = parseManifest(manifestJson);
  return createApp({
    store: new ModelStore(studentsOnly(manifest), modelFiles, ortWebEngine),
    server: { name: pkg.name, version: pkg.version },
    // The teachers run on the teacher host (TEACHER_URL); their entries say how to feed them.
    abRouting: { teachers: manifest.models.filter((m) => m.role === "teacher") },
    ...optionsFromEnv(env),
  });
}

export default {
  fetch(request: Request, env: Record<string, unknown>, ctx: ExecutionContext): Response | Promise<Response> {
    try {
      app ??= build(env);
    } catch (err) {
      // A bad manifest or variable: say which, once per request, until it is fixed and redeployed.
      console.error(err);
      const message = err instanceof ConfigError || err instanceof ManifestError ? err.message : "cannot start";
      return Response.json({ error: `server misconfigured: ${message}` }, { status: 500 });
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Record<string, unknown>>;
