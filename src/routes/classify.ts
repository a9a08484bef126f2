// Classification for people: an image in (raw body or multipart field), top-k labels out. Mounted at /v1.
import { type Context, Hono } from "hono";
import { endTime, startTime } from "hono/timing";
import type { ModelEntry } from "../../models/schema.ts";
import { badRequest, notFound } from "../errors.ts";
import { singleImageDims } from "../image/preprocess.ts";
import { type RouteContext, findModel, imageLimits, nameModel, runTimed } from "./context.ts";
import { uploadedInputs } from "./upload.ts";

const DEFAULT_K = 5;

/** `?k=`: how many labels to answer, at most the model's label count. */
export function topK(c: Context, labels: number): number {
  const raw = c.req.query("k");
  if (raw === undefined) return Math.min(DEFAULT_K, labels);
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < 1) throw badRequest(`k must be a positive integer, got "${raw.slice(0, 40)}"`);
  return Math.min(Number(raw), labels);
}

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

/** The k most probable labels, most probable first. */
export function rankPredictions(probabilities: Float32Array, entry: ModelEntry, k: number): Prediction[] {
  return Array.from(probabilities, (probability, index) => ({ label: entry.labels[index] ?? String(index), index, probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}

export function classifyRoutes({ store, limits }: RouteContext): Hono {
  const app = new Hono();

  const classify = async (c: Context, entry: ModelEntry) => {
    nameModel(c, entry);
    const k = topK(c, entry.labels.length);
    startTime(c, "decode");
    const { image, inputs } = await uploadedInputs(c, [entry], imageLimits(limits));
    endTime(c, "decode");
    const results = await runTimed(c, store, entry, inputs[0]!, singleImageDims(entry));
    const probabilities = results.get("probabilities")?.data;
    if (!probabilities) throw new Error(`model "${entry.name}" gave no probabilities`);
    return c.json({ model: { name: entry.name, version: entry.version }, image, predictions: rankPredictions(probabilities, entry, k) });
  };

  app.post("/classify", (c) => {
    const entry = store.defaultStudent();
    if (!entry) throw notFound("this server hosts no default student model");
    return classify(c, entry);
  });
  app.post("/models/:name/classify", (c) => classify(c, findModel(store, c.req.param("name"))));
  return app;
}
