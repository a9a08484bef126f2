// Every export is checked before it is accepted: the same images go through the tfjs model (inference
// mode, NHWC) and through onnxruntime-node on the exported bytes (NCHW). The logits must agree to
// PARITY_TOLERANCE and the top-1 class must agree on every image.
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { type Images, nhwcToNchw } from "../data/layout.ts";
import { type Model, forward } from "../model/forward.ts";
import { INPUT_NAME, OUTPUT_NAMES } from "../model/to-onnx.ts";

/** Largest accepted |tfjs logit - onnxruntime logit|. */
export const PARITY_TOLERANCE = 1e-4;
export const PARITY_SAMPLES = 512;

export interface ParityResult {
  maxAbsLogitDiff: number;
  /** Fraction of images where both engines pick the same class. */
  top1Agreement: number;
  samples: number;
}

export class ExportVerificationError extends Error {
  override name = "ExportVerificationError";
}

export async function openSession(onnx: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(onnx, { graphOptimizationLevel: "all", logSeverityLevel: 3 });
}

/** Logits [count, classes] from onnxruntime, in batches (the session takes NCHW). */
export async function onnxLogits(
  session: ort.InferenceSession,
  images: Images,
  batchSize = 256,
): Promise<Float32Array> {
  const chunks: Float32Array[] = [];
  for (let i = 0; i < images.count; i += batchSize) {
    const n = Math.min(batchSize, images.count - i);
    const input = new ort.Tensor("float32", nhwcToNchw(images, i, n), [
      n,
      images.channels,
      images.height,
      images.width,
    ]);
    const out = await session.run({ [INPUT_NAME]: input }, [OUTPUT_NAMES[0]]);
    chunks.push(out[OUTPUT_NAMES[0]]!.data as Float32Array);
    input.dispose();
  }
  return concat(chunks);
}

/** Logits [count, classes] from the tfjs model in inference mode, in batches small enough for wasm memory. */
export function tfjsLogits(model: Model, images: Images, batchSize = 32): Float32Array {
  const { height: h, width: w, channels: c } = images;
  const size = h * w * c;
  const chunks: Float32Array[] = [];
  for (let i = 0; i < images.count; i += batchSize) {
    const n = Math.min(batchSize, images.count - i);
    chunks.push(
      tf.tidy(() => {
        const x = tf.tensor4d(images.data.subarray(i * size, (i + n) * size), [n, h, w, c]);
        return forward(model, x, { training: false }).dataSync() as Float32Array;
      }),
    );
  }
  return concat(chunks);
}

function concat(chunks: Float32Array[]): Float32Array {
  const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

export function argmax(logits: Float32Array, classes: number, row: number): number {
  let best = 0;
  for (let k = 1; k < classes; k++) if (logits[row * classes + k]! > logits[row * classes + best]!) best = k;
  return best;
}

/** Compares two engines' logits for the same images. */
export function compareLogits(a: Float32Array, b: Float32Array, classes: number): ParityResult {
  if (a.length !== b.length || a.length % classes !== 0)
    throw new Error(`logit arrays differ in size (${a.length} vs ${b.length})`);
  const samples = a.length / classes;
  let maxAbsLogitDiff = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    // NaN never compares greater: count it as an infinite difference.
    maxAbsLogitDiff = Number.isNaN(d) ? Infinity : Math.max(maxAbsLogitDiff, d);
  }
  let agree = 0;
  for (let n = 0; n < samples; n++) if (argmax(a, classes, n) === argmax(b, classes, n)) agree++;
  return { maxAbsLogitDiff, top1Agreement: samples === 0 ? 0 : agree / samples, samples };
}

/** tfjs vs onnxruntime on the same images. */
export async function measureParity(
  model: Model,
  session: ort.InferenceSession,
  images: Images,
): Promise<ParityResult> {
  const reference = tfjsLogits(model, images);
  const exported = await onnxLogits(session, images);
  return compareLogits(reference, exported, model.graph.numClasses);
}

/** Throws ExportVerificationError unless the export is within tolerance and agrees on every image. */
export function assertParity(what: string, r: ParityResult, tolerance = PARITY_TOLERANCE): void {
  if (r.samples === 0) throw new ExportVerificationError(`${what}: no images to verify the export with`);
  const problems: string[] = [];
  if (!(r.maxAbsLogitDiff <= tolerance))
    problems.push(`max |logit difference| ${r.maxAbsLogitDiff.toExponential(3)} exceeds ${tolerance.toExponential(0)}`);
  if (r.top1Agreement < 1)
    problems.push(`top-1 agrees on ${(r.top1Agreement * 100).toFixed(2)}% of ${r.samples} images, not 100%`);
  if (problems.length > 0)
    throw new ExportVerificationError(`${what}: ONNX export does not match tfjs: ${problems.join("; ")}`);
}

/** Top-1 accuracy of the exported model itself, run by onnxruntime. */
export async function onnxAccuracy(
  session: ort.InferenceSession,
  images: Images,
  labels: ArrayLike<number>,
  classes: number,
): Promise<number> {
  const logits = await onnxLogits(session, images);
  let correct = 0;
  for (let n = 0; n < images.count; n++) if (argmax(logits, classes, n) === labels[n]) correct++;
  return images.count === 0 ? 0 : correct / images.count;
}
