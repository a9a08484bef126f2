// The Worker's fetch handler over a bundle of models (a manifest and its files). The app is built on
// the first request, not at module load: start-up stays well under the one second Workers allow,
// and the environment is known by then.
import type { Hono } from "hono";
import { ManifestError, parseManifest } from "../models/schema.ts";
import pkg from "../package.json";
import { createApp } from "./app.ts";
import { type ModelFiles, ModelStore, studentsOnly } from "./models/store.ts";
import { ortWebEngine } from "./models/ort-web.ts";
import { ConfigError, optionsFromEnv } from "./options.ts";

export function createWorker(manifestJson: unknown, modelFiles: ModelFiles): ExportedHandler<Record<string, unknown>> {
  let app: Hono | undefined;
  const build = (env: Record<string, unknown>) => {
    const manifest = parseManifest(manifestJson);
    return createApp({
      store: new ModelStore(studentsOnly(manifest), modelFiles, ortWebEngine),
      server: { name: pkg.name, version: pkg.version },
      // The teachers run on the teacher host (TEACHER_URL); their entries say how to feed them.
      abRouting: { teachers: manifest.models.filter((m) => m.role === "teacher") },
      ...optionsFromEnv(env),
    });
  };
  return {
    fetch(request, env, ctx) {
      try {
        app ??= build(env);
      } catch (err) {
        // A bad manifest or variable: say which, on every request, until it is fixed and redeployed.
        console.error(err);
        const message = err instanceof ConfigError || err instanceof ManifestError ? err.message : "cannot start";
        return Response.json({ error: `server misconfigured: ${message}` }, { status: 500 });
      }
      return app.fetch(request, env, ctx);
    },
  };
}
