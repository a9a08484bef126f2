// What a classification answers: which labels (the selection a caller asks for with ?k= and
// ?threshold=), ranked by probability. Shared by the plain classifier and the A/B routes.
import type { ModelEntry } from "../../models/schema.ts";
import { badRequest } from "../http/errors.ts";

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

/** The query parameters a selection is read from, as the request gave them. */
export interface SelectionQuery {
  k: string | undefined;
  threshold: string | undefined;
}

/**
 * `?k=` and `?threshold=` for `entry`. By default a single-label model answers its 5 most probable
 * labels, and a multi-label one every label of probability 0.5 or more.
 */
export function predictionSelection(query: SelectionQuery, entry: ModelEntry): Selection {
  const labels = entry.labels.length;
  const multi = isMultiLabel(entry);
  const { k: rawK, threshold: rawT } = query;
  if (rawK !== undefined && (!/^\d{1,6}$/.test(rawK) || Number(rawK) < 1))
    throw badRequest(`k must be a positive integer, got "${rawK.slice(0, 40)}"`);
  const k = rawK === undefined ? (multi ? labels : Math.min(DEFAULT_K, labels)) : Math.min(Number(rawK), labels);
  if (rawT !== undefined && !(/^\d*\.?\d+$/.test(rawT) && Number(rawT) <= 1))
    throw badRequest(`threshold must be a number from 0 to 1, got "${rawT.slice(0, 40)}"`);
  return { k, threshold: rawT !== undefined ? Number(rawT) : multi ? DEFAULT_THRESHOLD : 0 };
}

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

/** The labels the selection keeps, most probable first. */
export function rankPredictions(
  probabilities: Float32Array,
  entry: ModelEntry,
  { k, threshold }: Selection,
): Prediction[] {
  return Array.from(probabilities, (probability, index) => ({
    label: entry.labels[index] ?? String(index),
    index,
    probability,
  }))
    .filter((p) => p.probability >= threshold)
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
}
