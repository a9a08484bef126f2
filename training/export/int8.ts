// The int8 variant of an exported fp32 student: calibrated on training images, quantized to QDQ
// (quantize.ts), checked by onnx.checker and against its fp32 twin, measured on the test images.
//
// The int8 file is run by onnxruntime-node with graph optimization "basic", which keeps the Q/DQ
// nodes and so computes what the file means in ONNX. At "all" onnxruntime fuses them into its integer
// kernels, and on x86 CPUs without VNNI (AVX2, and AVX-512 without VNNI) those add u8 x s8 products in
// saturating 16-bit pairs: the same file loses about 1.4 points there (docs/int8.md). The Worker's
// WASM kernels do not saturate; test/src/int8.test.ts holds the Worker to this reference.
import { createHash } from "node:crypto";
import * as ort from "onnxruntime-node";
import { type ModelEntry, type Quantization } from "../../models/schema.ts";
import { makeBatch, normalizationTable } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import type { Images } from "../data/layout.ts";
import { Rng } from "../data/rng.ts";
import { type CalibrationMethod, DEFAULT_PERCENTILE, calibrate } from "./calibrate.ts";
import { runOnnxChecker } from "./checker.ts";
import { decodeModel } from "./proto.ts";
import { planQdq, toQdq } from "./quantize.ts";
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
/** The accuracy the int8 variant should keep, in points of top-1: a larger loss is logged. */
export const INT8_ACCURACY_TARGET = 0.3;

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

/** The ONNX runtime session the int8 figures come from: Q/DQ kept (see the header). */
export function openInt8Session(onnx: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(onnx, { graphOptimizationLevel: "basic", logSeverityLevel: 3 });
}

/** `samples` training images spread evenly over the split, normalized as the model expects. */
export function calibrationImages(train: ImageSet, normalization: { mean: number[]; std: number[] }, samples: number): Images {
  if (!Number.isInteger(samples) || samples < 1) throw new Error(`calibration needs a whole number of images >= 1, got ${samples}`);
  const count = Math.min(samples, train.count);
  const indices = Array.from({ length: count }, (_, i) => Math.floor((i * train.count) / count));
  const batch = makeBatch(train, indices, normalizationTable(normalization), null, new Rng(0));
  return { data: batch.images, count, height: train.height, width: train.width, channels: train.channels };
}

function accuracy(logits: Float32Array, labels: ArrayLike<number>, classes: number): number {
  const count = logits.length / classes;
  let correct = 0;
  for (let n = 0; n < count; n++) if (argmax(logits, classes, n) === labels[n]) correct++;
  return count === 0 ? 0 : correct / count;
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
  log?: (line: string) => void;
}

/** Quantizes a verified fp32 student; throws ExportVerificationError when the result does not pass. */
export async function int8Variant({ twin, onnx, train, test, labels, calibration = {}, log = () => {} }: Int8Inputs): Promise<{ entry: ModelEntry; file: ModelFile }> {
  const name = int8Name(twin.name);
  const samples = calibration.samples ?? DEFAULT_CALIBRATION_SAMPLES;
  const method = calibration.method ?? DEFAULT_CALIBRATION_METHOD;
  const percentile = method === "percentile" ? (calibration.percentile ?? DEFAULT_PERCENTILE) : undefined;
  const dataset = twin.metrics.accuracy?.dataset ?? "unknown";

  const model = decodeModel(onnx);
  const plan = planQdq(model);
  const images = calibrationImages(train, twin.normalization, samples);
  const ranges = await calibrate(model, plan.tensors, images, { method, percentile });
  const bytes = toQdq(model, plan, ranges, {
    docString: `narrowdeep ${name}: static int8 (QDQ) of ${twin.name}, run ${twin.version}`,
    metadata: { ...model.metadata, quantization: `int8 QDQ of ${twin.name}, ${method}${percentile ? ` ${percentile}` : ""} over ${images.count} ${dataset} training images` },
  });
  const checker = runOnnxChecker(bytes);
  if (checker.status === "failed") throw new ExportVerificationError(`${name}: onnx.checker rejects the int8 model: ${checker.detail}`);
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

  const top1 = accuracy(logits, labels, classes);
  const quantization: Quantization = {
    twin: twin.name,
    twinSha256: twin.sha256,
    format: "qdq",
    weights: "int8, symmetric, per output channel",
    activations: "uint8, per tensor",
    bias: "int32",
    calibration: { dataset, split: "train", samples: images.count, method, ...(percentile ? { percentile } : {}) },
    relativeLogitError,
    tolerance: INT8_TOLERANCE,
    runtime: "onnxruntime-node, graph optimization basic",
  };
  const entry: ModelEntry = {
    ...twin,
    name,
    file: `${name}.onnx`,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    bytes: bytes.length,
    metrics: { params: twin.metrics.params, macs: twin.metrics.macs, accuracy: { top1, dataset, split: "test", samples: test.count } },
    export: { ...parity, opset: model.opset, exportedAt: new Date().toISOString(), ...(checker.status === "passed" ? { checker: `passed (${checker.detail})` } : {}) },
    quantization,
  };
  // The twin on the same images, so that the two figures pair up.
  const loss = 100 * (accuracy(reference, labels, classes) - top1);
  log(
    `export: ${name}: ${bytes.length} bytes (${(onnx.length / bytes.length).toFixed(2)}x smaller than ${twin.name}), test top-1 ${(top1 * 100).toFixed(2)}% (${loss > 0 ? "-" : "+"}${Math.abs(loss).toFixed(2)} points), ` +
      `top-1 agreement ${(parity.top1Agreement * 100).toFixed(2)}% and mean |logit diff| ${(relativeLogitError * 100).toFixed(2)}% of the mean |logit| over ${parity.samples} images` +
      (loss > INT8_ACCURACY_TARGET ? `; more than the ${INT8_ACCURACY_TARGET} points aimed for` : ""),
  );
  return { entry, file: { file: entry.file, bytes } };
}
