// Classification for people: an image in (raw body or multipart field), top-k labels out. Mounted at /v1.
import { type Context, Hono } from "hono";
import { endTime, startTime } from "hono/timing";
import type { ModelEntry } from "../../models/schema.ts";
import { badRequest, notFound } from "../errors.ts";
import { singleImageDims } from "../image/preprocess.ts";
import { type RouteContext, findModel, nameModel, runTimed } from "./context.ts";
import { uploadedInputs } from "./upload.ts";

const DEFAULT_K = 5;
/** A multi-label model's default: a label is present when its own probability is at least this. */
const DEFAULT_THRESHOLD = 0.5;

/** A multi-label model answers per-class sigmoid probabilities: each label is present or not on its own. */
export const isMultiLabel = (entry: ModelEntry) => entry.outputActivation === "sigmoid";

/** What an answer lists: the labels at least `threshold` probable, most probable first, at most `k`. */
export interface Selection {
  k: number;
  threshold: number;
}

/**
 * `?k=` and `?threshold=` for `entry`. By default a single-label model answers its 5 most probable
 * labels, and a multi-label one every label of probability 0.5 or more.
 */
export function predictionSelection(c: Context, entry: ModelEntry): Selection {
  const labels = entry.labels.length;
  const multi = isMultiLabel(entry);
  const rawK = c.req.query("k");
  if (rawK !== undefined && (!/^\d{1,6}$/.test(rawK) || Number(rawK) < 1)) throw badRequest(`k must be a positive integer, got "${rawK.slice(0, 40)}"`);
  const k = rawK === undefined ? (multi ? labels : Math.min(DEFAULT_K, labels)) : Math.min(Number(rawK), labels);
  const rawT = c.req.query("threshold");
  if (rawT !== undefined && !(/^\d*\.?\d+$/.test(rawT) && Number(rawT) <= 1)) throw badRequest(`threshold must be a number from 0 to 1, got "${rawT.slice(0, 40)}"`);
  return { k, threshold: rawT !== undefined ? Number(rawT) : multi ? DEFAULT_THRESHOLD : 0 };
}

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

/** The labels the selection keeps, most probable first. */
export function rankPredictions(probabilities: Float32Array, entry: ModelEntry, { k, threshold }: Selection): Prediction[] {
  return Array.from(probabilities, (probability, index) => ({ label: entry.labels[index] ?? String(index), index, probability }))
    .filter((p) => p.probability >= threshold)
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}

export function classifyRoutes({ store, limits }: RouteContext): Hono {
  const app = new Hono();

  const classify = async (c: Context, entry: ModelEntry) => {
    nameModel(c, entry);
    const selection = predictionSelection(c, entry);
    startTime(c, "decode");
    const { image, inputs } = await uploadedInputs(c, [entry], limits);
    endTime(c, "decode");
    const results = await runTimed(c, store, entry, inputs[0]!, singleImageDims(entry));
    const probabilities = results.get("probabilities")?.data;
    if (!probabilities) throw new Error(`model "${entry.name}" gave no probabilities`);
    const multi = isMultiLabel(entry) ? { multiLabel: true, threshold: selection.threshold } : {};
    return c.json({ model: { name: entry.name, version: entry.version }, image, ...multi, predictions: rankPredictions(probabilities, entry, selection) });
  };

  app.post("/classify", (c) => {
    const entry = store.defaultStudent();
    if (!entry) throw notFound("this server hosts no default student model");
    return classify(c, entry);
  });
  app.post("/models/:name/classify", (c) => classify(c, findModel(store, c.req.param("name"))));
  return app;
}
