// The Worker's handlers over a bundle of models (a manifest and its files):
//   fetch      the API; the app is built on the first request, not at module load (start-up stays
//              well under the one second Workers allow, and the environment is known by then);
//   queue      the measurements queue's consumer: batches of rows into D1;
//   scheduled  the cron trigger: raw measurements past their retention become hourly aggregates.
import type { D1Database, MessageBatch } from "@cloudflare/workers-types";
import type { Hono } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { ManifestError, parseManifest } from "../models/schema.ts";
import pkg from "../package.json";
import { createApp } from "./app.ts";
import { consumeMeasurements } from "./measurements/consumer.ts";
import { DEFAULT_RETENTION_HOURS, rollUp } from "./measurements/rollup.ts";
import { type ModelFiles, ModelStore, studentsOnly } from "./models/store.ts";
import { ortWebEngine } from "./models/ort-web.ts";
import { ConfigError, optionsFromEnv } from "./options.ts";

type Env = Record<string, unknown> & { DB?: D1Database; ADMIN_TOKEN?: string; MEASUREMENT_RETENTION_HOURS?: string };

/** Whether the request carries the admin token: only then does a misconfiguration say what it is. */
async function fromAdmin(request: Request, env: Env): Promise<boolean> {
  const match = /^Bearer +(\S+)$/i.exec(request.headers.get("authorization") ?? "");
  return Boolean(env.ADMIN_TOKEN && match && (await timingSafeEqual(env.ADMIN_TOKEN, match[1]!)));
}

function retentionHours(env: Env): number {
  const raw = env.MEASUREMENT_RETENTION_HOURS;
  if (raw === undefined || raw === "") return DEFAULT_RETENTION_HOURS;
  const n = /^\d+$/.test(String(raw)) ? Number(raw) : NaN;
  if (!(n >= 1)) throw new ConfigError(`MEASUREMENT_RETENTION_HOURS must be a positive integer, got "${String(raw)}"`);
  return n;
}

function database(env: Env, job: string): D1Database {
  if (!env.DB) throw new ConfigError(`${job} needs the D1 binding DB`);
  return env.DB;
}

export function createWorker(manifestJson: unknown, modelFiles: ModelFiles): ExportedHandler<Env> {
  let app: Hono | undefined;
  const build = (env: Env) => {
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
    async fetch(request, env, ctx) {
      try {
        app ??= build(env);
      } catch (err) {
        // A bad manifest or variable: logged, and named to the admin, on every request until it is
        // fixed and redeployed; anyone else learns only that the server is misconfigured.
        console.error(err);
        const detail = err instanceof ConfigError || err instanceof ManifestError ? err.message : "cannot start";
        const body = (await fromAdmin(request, env)) ? { error: "server misconfigured", detail } : { error: "server misconfigured" };
        return Response.json(body, { status: 500 });
      }
      return app.fetch(request, env, ctx);
    },
    async queue(batch, env) {
      await consumeMeasurements(batch as unknown as MessageBatch<unknown>, database(env, "the measurements queue consumer"));
    },
    async scheduled(controller, env) {
      const result = await rollUp(database(env, "the measurement roll-up"), controller.scheduledTime, retentionHours(env));
      if (result.hours.length > 0 || result.remaining) console.log(`measurement roll-up: folded ${result.hours.length} hours${result.remaining ? ", more left for the next run" : ""}`);
    },
  };
}
