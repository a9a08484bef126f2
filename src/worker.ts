// The Worker's handlers over a bundle of models (a manifest and its files), or over the models of the
// R2 bucket bound as MODELS when there is one (src/models/r2.ts):
//   fetch      the API; the app is built on the first request, not at module load (start-up stays
//              well under the one second Workers allow, and the environment is known by then);
//              warm-up runs and model version checks go to waitUntil, after the response;
//   queue      the measurements queue's consumer: batches of rows into D1;
//   scheduled  the cron triggers (scheduled.ts): hourly, raw measurements past their retention become
//              hourly aggregates; every minute, the canary controller judges its step.
import type { Hono } from "hono";
import { timingSafeEqual } from "hono/utils/buffer";
import { type Manifest, ManifestError, parseManifest } from "../models/schema.ts";
import pkg from "../package.json";
import { createApp } from "./app.ts";
import { DASHBOARD_ASSETS } from "./dashboard/assets.ts";
import { canaryTick } from "./canary/controller.ts";
import { consumeMeasurements } from "./measurements/consumer.ts";
import { REQUEST_ID_HEADER, chooseRequestId } from "./middleware/request-id.ts";
import { rollUp } from "./measurements/rollup.ts";
import { type ModelFiles, ModelStore, type StoreOptions, studentsOnly } from "./models/store.ts";
import { ortWebEngine } from "./models/ort-web.ts";
import { ModelSourceError, ModelUpdater, R2ModelFiles, servedManifest } from "./models/r2.ts";
import type { WarmupResult } from "./models/warmup.ts";
import { ConfigError } from "./config/error.ts";
import { type WorkerConfig, checkSecrets, workerConfig } from "./config/worker-config.ts";
import { jobsFor } from "./scheduled.ts";
import { database } from "./storage/database.ts";

/**
 * The bindings and vars of wrangler.toml (worker-configuration.d.ts, from `wrangler types`), each of
 * them optional: local runs and tests bind only what they use, and every part checks for its own.
 */
type WorkerEnv = Partial<Env>;

/** Whether the request carries the admin token: only then does a misconfiguration say what it is. */
async function fromAdmin(request: Request, env: WorkerEnv): Promise<boolean> {
  const match = /^Bearer +(\S+)$/i.exec(request.headers.get("authorization") ?? "");
  return Boolean(env.ADMIN_TOKEN && match && (await timingSafeEqual(env.ADMIN_TOKEN, match[1]!)));
}

const logWarmup = (r: WarmupResult) =>
  console.log(
    `warm-up: model "${r.model}" ${r.runs} runs in ${Math.round(r.ms)} ms, ${r.steady ? "steady" : "stopped at the cap"} at ${r.lastWindowMeanMs.toFixed(1)} ms a run`,
  );

interface Built {
  app: Hono;
  store: ModelStore;
  /** Only with models from R2. */
  updater?: ModelUpdater;
}

async function buildWorker(
  env: WorkerEnv,
  config: WorkerConfig,
  manifestJson: unknown,
  modelFiles: ModelFiles,
): Promise<Built> {
  checkSecrets(env);
  const storeOptions: StoreOptions = { warmup: config.warmup, onWarmup: logWarmup };
  let manifest: Manifest;
  let store: ModelStore;
  let updater: ModelUpdater | undefined;
  if (env.MODELS) {
    const files = new R2ModelFiles(env.MODELS, config.r2);
    const read = await files.manifest();
    manifest = read.manifest;
    store = new ModelStore(servedManifest(manifest), files, ortWebEngine, storeOptions);
    updater = new ModelUpdater(store, files, read.etag, manifest);
  } else {
    manifest = parseManifest(manifestJson);
    store = new ModelStore(studentsOnly(manifest), modelFiles, ortWebEngine, storeOptions);
  }
  const app = createApp({
    store,
    server: { name: pkg.name, version: pkg.version },
    // The teachers run on the teacher host (TEACHER_URL); their entries say how to feed them. With
    // models from R2 they come from the manifest served now, so a new teacher needs no redeploy.
    abRouting: { teachers: () => (updater?.manifest ?? manifest).models.filter((m) => m.role === "teacher") },
    dashboard: { assets: DASHBOARD_ASSETS },
    limits: config.limits,
    corsOrigins: config.corsOrigins,
  });
  return { app, store, updater };
}

/**
 * The Worker's fetch, queue and scheduled handlers over a bundled manifest and its model files (or the
 * R2 bucket bound as MODELS, when there is one).
 *
 * @example
 * ```ts
 * // src/index.ts, the Worker's entry point
 * import { manifestJson, modelFiles } from "../models/bundle.ts";
 * import { createWorker } from "./worker.ts";
 *
 * export default createWorker(manifestJson, modelFiles);
 * ```
 */
export function createWorker(manifestJson: unknown, modelFiles: ModelFiles): ExportedHandler<WorkerEnv> {
  let built: Promise<Built> | undefined;
  // Parsed once per environment object (an isolate's requests and cron runs share one); a bad value
  // is not kept, so each request (or cron run) says what is wrong until it is fixed.
  const configs = new WeakMap<WorkerEnv, WorkerConfig>();
  const configOf = (env: WorkerEnv) => {
    let config = configs.get(env);
    if (!config) {
      config = workerConfig(env);
      configs.set(env, config);
    }
    return config;
  };
  return {
    async fetch(request, env, ctx) {
      let worker: Built;
      try {
        built ??= Promise.resolve()
          .then(() => buildWorker(env, configOf(env), manifestJson, modelFiles))
          .catch((err) => {
            built = undefined;
            throw err;
          });
        worker = await built;
      } catch (err) {
        // A bad manifest or variable: logged, and named to the admin, on every request until it is
        // fixed and redeployed (500); anyone else learns only that the server is misconfigured. No
        // usable manifest in the R2 bucket: 503 until one is uploaded, retried on every request.
        const [status, error] =
          err instanceof ModelSourceError ? [503, "models unavailable"] : [500, "server misconfigured"];
        const known = err instanceof ConfigError || err instanceof ManifestError || err instanceof ModelSourceError;
        const detail = known ? err.message : "cannot start";
        // Outside the app, so without its middleware: the request id is set, and the request logged, here.
        const requestId = chooseRequestId(request.headers.get(REQUEST_ID_HEADER));
        const cause =
          err instanceof Error
            ? { name: err.name, message: err.message, ...(known ? {} : { stack: err.stack }) }
            : { name: "Error", message: String(err) };
        console.error(
          JSON.stringify({ event: "start_failed", requestId, method: request.method, status, error: cause }),
        );
        const body = (await fromAdmin(request, env)) ? { error, detail } : { error };
        return Response.json(body, { status, headers: { [REQUEST_ID_HEADER]: requestId } });
      }
      const response = await worker.app.fetch(request, env, ctx);
      const { store, updater } = worker;
      const check = updater?.maybeCheck()?.then(() => store.background());
      const background = [store.background(), check].filter((p) => p !== undefined);
      if (background.length > 0) ctx.waitUntil(Promise.all(background));
      return response;
    },
    async queue(batch, env) {
      await consumeMeasurements(batch, database(env, "the measurements queue consumer"));
    },
    async scheduled(controller, env) {
      const { crons, retentionHours } = configOf(env);
      const jobs = jobsFor(controller.cron, crons);
      if (jobs.includes("rollup")) {
        const result = await rollUp(database(env, "the measurement roll-up"), controller.scheduledTime, retentionHours);
        if (result.hours.length > 0 || result.remaining)
          console.log(
            `measurement roll-up: folded ${result.hours.length} hours${result.remaining ? ", more left for the next run" : ""}`,
          );
      }
      if (jobs.includes("canary")) {
        const decision = await canaryTick(database(env, "the canary controller"), controller.scheduledTime);
        if (decision && decision.action !== "hold")
          console.log(
            `canary: ${decision.action} ${decision.percentFrom}% -> ${decision.percentTo}%: ${decision.reason}`,
          );
      }
    },
  };
}
