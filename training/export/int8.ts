// The int8 variant of an exported fp32 student: calibrated on training images, quantized to QDQ
// (quantize.ts), checked by onnx.checker and against its fp32 twin, measured on the test images.
//
// Two checks against the twin:
// - parity: the file as ONNX means it, run by onnxruntime-node with graph optimization "basic" (Q/DQ
//   kept, float arithmetic), must keep its logits near the twin's;
// - portability: its top-1 in the two runtimes users run it in (runtimes.ts), onnxruntime-web (the
//   Worker) and onnxruntime-node's default session (fused integer kernels, which on x86 without VNNI
//   saturate int8 weights: quantize.ts, WEIGHT_FORMATS), must each be within 0.3 points of the twin's
//   and of each other.
import { createHash } from "node:crypto";
import * as ort from "onnxruntime-node";
import type { ModelEntry, Quantization } from "../../models/schema.ts";
import { makeBatch, normalizationTable } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { Images } from "../data/layout.ts";
import { Rng } from "../data/rng.ts";
import { type CalibrationMethod, DEFAULT_PERCENTILE, calibrate } from "./calibrate.ts";
import { runOnnxChecker } from "./checker.ts";
import { decodeModel } from "../onnx/proto.ts";
import { DEFAULT_WEIGHT_FORMAT, type WeightFormatName, describeWeights, planQdq, toQdq } from "./quantize.ts";
import { type NativeSettings, type Runtime, RUNTIMES, runtimeLogits, runtimeSession } from "./runtimes.ts";
import type { ModelFile } from "./store.ts";
import { ExportVerificationError, argmax, compareLogits, onnxLogits, openSession } from "./verify.ts";

export const INT8_SUFFIX = "-int8";
export const DEFAULT_CALIBRATION_SAMPLES = 1000;
/** Why minmax: calibrate.ts and docs/int8.md. */
export const DEFAULT_CALIBRATION_METHOD: CalibrationMethod = "minmax";

/**
 * What the int8 file must keep of its twin on the check images: a mean |logit difference| of at most
 * this share of the mean |fp32 logit|. Rounding to 8 bits costs trained students 0.8-1.5% and
 * untrained test fixtures 1-6%; one convolution's weight scales off by 2x cost narrow-deep 41%. Top-1
 * agreement is recorded, not required: near-tied logits of an untrained model flip under any noise.
 */
export const INT8_TOLERANCE = { maxRelativeLogitError: 0.1 };
/**
 * What the int8 file must keep in both runtimes, in points of top-1 on the check images: at most
 * maxLossPoints below its twin in each, and at most maxGapPoints between the two.
 */
export interface PortabilityTolerance {
  maxLossPoints: number;
  maxGapPoints: number;
}
export const INT8_PORTABILITY: PortabilityTolerance = { maxLossPoints: 0.3, maxGapPoints: 0.3 };

/** How int8 variants are made and checked, beyond calibration. */
export interface Int8Settings {
  /** How the weights are stored (default DEFAULT_WEIGHT_FORMAT). */
  weights?: WeightFormatName;
  /** Where the onnxruntime-node figure is measured (default: this CPU). */
  native?: NativeSettings;
  /** Default INT8_PORTABILITY; `npm run export -- --int8-max-loss` sets both bounds (untrained test fixtures need them wide). */
  portability?: Partial<PortabilityTolerance>;
}

export interface CalibrationSettings {
  /** Training images the activation ranges are measured on (default 1000). */
  samples?: number;
  method?: CalibrationMethod;
  /** Percentile method only (default 99.99). */
  percentile?: number;
}

export const int8Name = (name: string) => `${name}${INT8_SUFFIX}`;

/**
 * An int8 model that strays from its twin beyond the tolerance. Exporting checkpoints, it costs the
 * variant, not the export (tiny students quantize badly: 13% for the distill CLI test's 4K-parameter ones);
 * asked for int8 variants alone, it fails the export.
 */
export class Int8ParityError extends ExportVerificationError {
  override name = "Int8ParityError";
}

/** An int8 model that loses too much top-1 in a runtime, or scores differently in the two: refused as a parity failure is. */
export class Int8PortabilityError extends Int8ParityError {
  override name = "Int8PortabilityError";
}

/** Top-1 of the int8 file in each runtime, with its twin's, as numbers of correct images out of `samples`. */
export interface PortabilityFigures {
  samples: number;
  twin: number;
  runtimes: Record<Runtime, number>;
}

const points = (correct: number, samples: number) => (100 * correct) / samples;
const pct = (correct: number, samples: number) => `${points(correct, samples).toFixed(2)}%`;

/** Throws Int8PortabilityError, naming every figure, unless both runtimes keep the twin's top-1 and agree. */
export function assertPortable(
  name: string,
  f: PortabilityFigures,
  tolerance: PortabilityTolerance = INT8_PORTABILITY,
): void {
  // Compared in images, not rounded percentages: 30 of 10,000 images is exactly 0.3 points.
  const within = (a: number, b: number, limit: number) => Math.abs(a - b) <= (limit / 100) * f.samples + 1e-9;
  const problems: string[] = [];
  for (const r of RUNTIMES) {
    if (f.runtimes[r] < f.twin && !within(f.runtimes[r], f.twin, tolerance.maxLossPoints))
      problems.push(
        `${r} is ${(points(f.twin, f.samples) - points(f.runtimes[r], f.samples)).toFixed(2)} points below the twin (at most ${tolerance.maxLossPoints} allowed)`,
      );
  }
  const [web, node] = [f.runtimes["onnxruntime-web"], f.runtimes["onnxruntime-node"]];
  if (!within(web, node, tolerance.maxGapPoints))
    problems.push(
      `the two runtimes differ by ${Math.abs(points(web, f.samples) - points(node, f.samples)).toFixed(2)} points (at most ${tolerance.maxGapPoints} allowed)`,
    );
  if (problems.length === 0) return;
  throw new Int8PortabilityError(
    `${name}: the int8 model does not keep its twin's accuracy in both runtimes: top-1 over ${f.samples} test images is ${pct(f.twin, f.samples)} for the fp32 twin, ` +
      `${pct(web, f.samples)} in onnxruntime-web, ${pct(node, f.samples)} in onnxruntime-node; ${problems.join("; ")} (export with --no-int8 to skip int8 variants)`,
  );
}

/** The ONNX runtime session the int8 figures come from: Q/DQ kept (see the header). */
export function openInt8Session(onnx: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(onnx, { graphOptimizationLevel: "basic", logSeverityLevel: 3 });
}

/** `samples` training images spread evenly over the split, normalized as the model expects. */
export function calibrationImages(
  train: ImageSet,
  normalization: { mean: number[]; std: number[] },
  samples: number,
): Images {
  if (!Number.isInteger(samples) || samples < 1)
    throw new Error(`calibration needs a whole number of images >= 1, got ${samples}`);
  const count = Math.min(samples, train.count);
  const indices = Array.from({ length: count }, (_, i) => Math.floor((i * train.count) / count));
  const batch = makeBatch(train, indices, normalizationTable(normalization), null, new Rng(0));
  return { data: batch.images, count, height: train.height, width: train.width, channels: train.channels };
}

function correctCount(logits: Float32Array, labels: ArrayLike<number>, classes: number): number {
  let correct = 0;
  for (let n = 0; n < logits.length / classes; n++) if (argmax(logits, classes, n) === labels[n]) correct++;
  return correct;
}

function meanAbs(values: Float32Array): number {
  return values.reduce((a, v) => a + Math.abs(v), 0) / Math.max(1, values.length);
}

export interface Int8Inputs {
  /** The verified fp32 student and its bytes. */
  twin: ModelEntry;
  onnx: Uint8Array;
  /** The data set's training split (calibration). */
  train: ImageSet;
  /** Normalized test images and their labels (parity and accuracy). */
  test: Images;
  labels: ArrayLike<number>;
  calibration?: CalibrationSettings;
  settings?: Int8Settings;
  log?: (line: string) => void;
}

/** Quantizes a verified fp32 student; throws ExportVerificationError when the result does not pass. */
export async function int8Variant({
  twin,
  onnx,
  train,
  test,
  labels,
  calibration = {},
  settings = {},
  log = () => {},
}: Int8Inputs): Promise<{ entry: ModelEntry; file: ModelFile }> {
  const name = int8Name(twin.name);
  const weights = settings.weights ?? DEFAULT_WEIGHT_FORMAT;
  const tolerance = { ...INT8_PORTABILITY, ...settings.portability };
  const samples = calibration.samples ?? DEFAULT_CALIBRATION_SAMPLES;
  const method = calibration.method ?? DEFAULT_CALIBRATION_METHOD;
  const percentile = method === "percentile" ? (calibration.percentile ?? DEFAULT_PERCENTILE) : undefined;
  const dataset = twin.metrics.accuracy?.dataset ?? "unknown";

  const model = decodeModel(onnx);
  const plan = planQdq(model);
  const images = calibrationImages(train, twin.normalization, samples);
  const ranges = await calibrate(model, plan.tensors, images, { method, percentile });
  const bytes = toQdq(model, plan, ranges, {
    weights,
    docString: `narrowdeep ${name}: static int8 (QDQ) of ${twin.name}, run ${twin.version}`,
    metadata: {
      ...model.metadata,
      quantization: `int8 QDQ of ${twin.name}, ${weights} weights, ${method}${percentile ? ` ${percentile}` : ""} over ${images.count} ${dataset} training images`,
    },
  });
  const checker = runOnnxChecker(bytes);
  if (checker.status === "failed")
    throw new ExportVerificationError(`${name}: onnx.checker rejects the int8 model: ${checker.detail}`);
  if (checker.status === "unavailable") log(`export: ${name}: onnx.checker skipped (${checker.detail})`);

  const classes = twin.labels.length;
  const [fp32, int8] = await Promise.all([openSession(onnx), openInt8Session(bytes)]);
  let reference: Float32Array;
  let logits: Float32Array;
  try {
    reference = await onnxLogits(fp32, test);
    logits = await onnxLogits(int8, test);
  } finally {
    await Promise.all([fp32.release(), int8.release()]);
  }
  const parity = compareLogits(reference, logits, classes);
  const diff = logits.map((v, i) => v - reference[i]!);
  const relativeLogitError = meanAbs(diff) / meanAbs(reference);
  if (!(relativeLogitError <= INT8_TOLERANCE.maxRelativeLogitError)) {
    throw new Int8ParityError(
      `${name}: the int8 model does not match its fp32 twin ${twin.name}: its mean |logit difference| over ${parity.samples} images is ${(relativeLogitError * 100).toFixed(2)}% of the mean |logit|, ` +
        `over the ${INT8_TOLERANCE.maxRelativeLogitError * 100}% allowed (export with --no-int8 to skip int8 variants)`,
    );
  }

  const checked = parity.samples;
  const figures: PortabilityFigures = {
    samples: checked,
    twin: correctCount(reference, labels, classes),
    runtimes: { "onnxruntime-web": 0, "onnxruntime-node": 0 },
  };
  for (const r of RUNTIMES)
    figures.runtimes[r] = correctCount(await runtimeLogits(r, bytes, test, settings.native), labels, classes);
  assertPortable(name, figures, tolerance);

  const top1 = correctCount(logits, labels, classes) / checked;
  const quantization: Quantization = {
    twin: twin.name,
    twinSha256: twin.sha256,
    format: "qdq",
    weights: describeWeights(weights),
    activations: "uint8, per tensor",
    bias: "int32",
    calibration: { dataset, split: "train", samples: images.count, method, ...(percentile ? { percentile } : {}) },
    relativeLogitError,
    tolerance: INT8_TOLERANCE,
    runtime: "onnxruntime-node, graph optimization basic",
    portability: {
      twinTop1: figures.twin / checked,
      runtimes: RUNTIMES.map((r) => ({
        runtime: r,
        session: runtimeSession(r, settings.native),
        top1: figures.runtimes[r] / checked,
      })),
      tolerance,
    },
  };
  const entry: ModelEntry = {
    ...twin,
    name,
    file: `${name}.onnx`,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    bytes: bytes.length,
    metrics: {
      params: twin.metrics.params,
      macs: twin.metrics.macs,
      accuracy: { top1, dataset, split: "test", samples: test.count },
    },
    export: {
      ...parity,
      opset: model.opset,
      exportedAt: new Date().toISOString(),
      ...(checker.status === "passed" ? { checker: `passed (${checker.detail})` } : {}),
    },
    quantization,
  };
  // The twin on the same images, so that the figures pair up.
  const change = (correct: number) => {
    const d = points(correct, checked) - points(figures.twin, checked);
    return `${d < 0 ? "-" : "+"}${Math.abs(d).toFixed(2)}`;
  };
  log(
    `export: ${name}: ${bytes.length} bytes (${(onnx.length / bytes.length).toFixed(2)}x smaller than ${twin.name}, ${weights} weights), test top-1 ${pct(top1 * checked, checked)} (${change(top1 * checked)} points; ` +
      `onnxruntime-web ${pct(figures.runtimes["onnxruntime-web"], checked)} ${change(figures.runtimes["onnxruntime-web"])}, onnxruntime-node ${pct(figures.runtimes["onnxruntime-node"], checked)} ${change(figures.runtimes["onnxruntime-node"])}), ` +
      `top-1 agreement ${(parity.top1Agreement * 100).toFixed(2)}% and mean |logit diff| ${(relativeLogitError * 100).toFixed(2)}% of the mean |logit| over ${checked} images`,
  );
  return { entry, file: { file: entry.file, bytes } };
}
