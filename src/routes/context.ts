// What every route module gets from createApp, and the helpers they share.
import type { Context } from "hono";
import { endTime, startTime } from "hono/timing";
import type { ModelEntry } from "../../models/schema.ts";
import type { OutputTensor } from "../oip/response.ts";
import { HttpError, badRequest, notFound } from "../http/errors.ts";
import { noteRequest } from "../middleware/request-log.ts";
import { type Selection, predictionSelection } from "../models/predictions.ts";
import { ModelLoadError, type ModelStore } from "../models/store.ts";
import type { Limits } from "./limits.ts";

export { imageLimits } from "./limits.ts";

export interface RouteContext {
  store: ModelStore;
  limits: Limits;
  server: { name: string; version: string };
}

/** The named model, at the given version if one is named; 404 otherwise. */
export function findModel(store: ModelStore, name: string, version?: string): ModelEntry {
  const entry = store.find(name);
  if (!entry)
    throw notFound(
      `unknown model "${name}"; this server hosts ${store.models.map((m) => `"${m.name}"`).join(", ") || "no models"}`,
    );
  if (version !== undefined && version !== entry.version) {
    throw notFound(`model "${name}" has no version "${version}"; it has "${entry.version}"`);
  }
  return entry;
}

/** Says which model and version answered, on every response that used one, and in the request's log line. */
export function nameModel(c: Context, entry: ModelEntry): void {
  c.header("X-Model-Name", entry.name);
  c.header("X-Model-Version", entry.version);
  noteRequest(c, { model: { name: entry.name, version: entry.version } });
}

/** The answer's selection for `entry`, from the request's ?k= and ?threshold= (models/predictions.ts). */
export const selectionOf = (c: Context, entry: ModelEntry): Selection =>
  predictionSelection({ k: c.req.query("k"), threshold: c.req.query("threshold") }, entry);

/** A model that failed to load (bad digest, missing file) answers 503; the reason is for operators. */
export const unavailableError = (err: ModelLoadError) =>
  new HttpError(503, `model "${err.model}" is unavailable`, err.message);

export function unavailable(err: unknown): never {
  throw err instanceof ModelLoadError ? unavailableError(err) : err;
}

/** The request's JSON body; a 400 that shows what is expected when it is not JSON. */
export async function jsonBody(c: Context, example: string): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw badRequest(`the body must be JSON, e.g. ${example}`);
  }
}

/** Runs a validator: its own error type becomes a 400 with the validator's message. */
export function validated<T>(parse: () => T, invalid: abstract new (...args: never[]) => Error): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof invalid) throw badRequest(err.message);
    throw err;
  }
}

/** The request's media type, lower-cased, without parameters; undefined when absent. */
export function mediaType(c: Context): string | undefined {
  const raw = c.req.header("content-type");
  if (raw === undefined) return undefined;
  return raw.split(";")[0]!.trim().toLowerCase();
}

/**
 * Runs the model, timing it as `inference` in Server-Timing, and the wait for its turn (other requests'
 * runs, or one warm-up run) as `queue`; the request that first needs the model also shows `load`
 * (digest check and session creation). The inference time goes into the request's log line too.
 */
export async function runTimed(
  c: Context,
  store: ModelStore,
  entry: ModelEntry,
  input: Float32Array,
  dims: number[],
): Promise<Map<string, OutputTensor>> {
  if (!store.isLoaded(entry)) {
    startTime(c, "load");
    await store.session(entry).catch(unavailable);
    endTime(c, "load");
  }
  startTime(c, "queue");
  let started = performance.now();
  const results = await store
    .run(entry, input, dims, () => {
      endTime(c, "queue");
      startTime(c, "inference");
      started = performance.now();
    })
    .catch(unavailable);
  endTime(c, "inference");
  noteRequest(c, { inferenceMs: performance.now() - started });
  return results;
}
