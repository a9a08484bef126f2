// Activation ranges for static quantization: the fp32 model runs in onnxruntime-node on calibration
// images (training images, never test images) with the tensors to quantize added as graph outputs.
//
// - "minmax" (the exporter's default): the smallest and largest value seen. Nothing seen is clipped,
//   but one outlier widens the scale of the whole tensor.
// - "percentile" (p = 99.99 unless given): a 2048-bin histogram over [min, max] of every tensor (a
//   second pass), and the range between the values at 100 - p and p percent. It clips the rarest
//   values so that the others get finer steps; a ReLU output keeps its lower end at 0.
// On the shipped students minmax kept their logits closest (docs/int8.md): batch-normalized ReLU
// activations of 28x28 images have no long tails for clipping to pay off.
import * as ort from "onnxruntime-node";
import { type Images, nhwcToNchw } from "../data/layout.ts";
import { INPUT_NAME } from "../model/to-onnx.ts";
import { type DecodedModel, encodeModel, valueInfo } from "../onnx/proto.ts";
import type { Range } from "./quantize.ts";
import { openSession } from "./verify.ts";

export const CALIBRATION_METHODS = ["minmax", "percentile"] as const;
export type CalibrationMethod = (typeof CALIBRATION_METHODS)[number];

export interface CalibrationOptions {
  method: CalibrationMethod;
  /** Percentile method: the share of values kept inside the range, in percent (default 99.99). */
  percentile?: number;
}

export const DEFAULT_PERCENTILE = 99.99;
const BINS = 2048;

/** The fp32 model with `tensors` added as outputs, so that one run yields all of them. */
function observing(model: DecodedModel, tensors: string[]): Uint8Array {
  const already = new Set(model.outputs.map((o) => o.name));
  return encodeModel({
    ...model,
    outputs: [...model.outputs, ...tensors.filter((t) => !already.has(t)).map((t) => valueInfo(t))],
  });
}

/** Calls `visit` with every tensor's values for each batch of the calibration images. */
async function eachBatch(
  session: ort.InferenceSession,
  tensors: string[],
  images: Images,
  visit: (tensor: string, values: Float32Array) => void,
  batchSize = 32,
): Promise<void> {
  const { channels, height, width } = images;
  for (let i = 0; i < images.count; i += batchSize) {
    const n = Math.min(batchSize, images.count - i);
    const out = await session.run(
      { [INPUT_NAME]: new ort.Tensor("float32", nhwcToNchw(images, i, n), [n, channels, height, width]) },
      tensors,
    );
    for (const t of tensors) visit(t, out[t]!.data as Float32Array);
  }
}

function histogramRange(counts: Float64Array, { min, max }: Range, percentile: number): Range {
  const total = counts.reduce((a, b) => a + b, 0);
  const width = (max - min) / BINS;
  const tail = total * (1 - percentile / 100);
  let lo = 0;
  for (let seen = 0; lo < BINS - 1 && seen + counts[lo]! <= tail; lo++) seen += counts[lo]!;
  let hi = BINS - 1;
  for (let seen = 0; hi > lo && seen + counts[hi]! <= tail; hi--) seen += counts[hi]!;
  return { min: min + lo * width, max: min + (hi + 1) * width };
}

/** The float range of each tensor over the calibration images. */
export async function calibrate(
  model: DecodedModel,
  tensors: string[],
  images: Images,
  options: CalibrationOptions,
): Promise<Map<string, Range>> {
  if (images.count === 0) throw new Error("calibration needs at least one image");
  const percentile = options.percentile ?? DEFAULT_PERCENTILE;
  if (options.method === "percentile" && !(percentile > 50 && percentile <= 100))
    throw new Error(`the calibration percentile must be in (50, 100], got ${percentile}`);
  const session = await openSession(observing(model, tensors));
  try {
    const ranges = new Map(tensors.map((t) => [t, { min: Infinity, max: -Infinity }]));
    await eachBatch(session, tensors, images, (t, values) => {
      const r = ranges.get(t)!;
      for (const v of values) {
        if (!Number.isFinite(v)) throw new Error(`calibration: tensor "${t}" has non-finite values (${v})`);
        if (v < r.min) r.min = v;
        if (v > r.max) r.max = v;
      }
    });
    if (options.method === "minmax") return ranges;

    const counts = new Map(tensors.map((t) => [t, new Float64Array(BINS)]));
    await eachBatch(session, tensors, images, (t, values) => {
      const { min, max } = ranges.get(t)!;
      const c = counts.get(t)!;
      const perBin = max > min ? BINS / (max - min) : 0;
      for (const v of values) c[Math.min(BINS - 1, Math.floor((v - min) * perBin))]!++;
    });
    return new Map(tensors.map((t) => [t, histogramRange(counts.get(t)!, ranges.get(t)!, percentile)]));
  } finally {
    await session.release();
  }
}
