// Runs the same computation on the `cpu` backend (the reference) and on `wasm` with the project's
// kernels, and measures how far apart the results are.
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { registerWasmTrainingKernels } from "../../../training/engine/wasm-kernels.ts";

export async function useBackend(name: "cpu" | "wasm"): Promise<void> {
  if (name === "wasm") registerWasmTrainingKernels();
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to start`);
}

/** Deterministic values in [-1, 1) (a small LCG, so both backends get identical inputs). */
export function randomValues(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** max |a - b| / max |b|: the error relative to the reference's scale. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Runs `compute` on cpu and on wasm, returning each output's values from both. */
export async function onBothBackends(
  compute: () => tf.Tensor[],
): Promise<{ cpu: Float32Array[]; wasm: Float32Array[] }> {
  const results: Record<"cpu" | "wasm", Float32Array[]> = { cpu: [], wasm: [] };
  for (const name of ["cpu", "wasm"] as const) {
    await useBackend(name);
    const outs = tf.tidy(compute);
    results[name] = outs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outs);
  }
  return results;
}

// [batch, height, width, inChannels, outChannels, kernel, stride], padding (kernel - 1) / 2 as forward.ts.
export const CONV_CASES: [number, number, number, number, number, number, number][] = [
  [2, 7, 7, 3, 4, 3, 1],
  [2, 8, 8, 3, 5, 3, 2],
  [3, 7, 7, 4, 6, 3, 2], // odd size with stride 2: last row used
  [2, 8, 8, 3, 4, 1, 2], // 1x1 stride 2: last row of x never read
  [2, 7, 6, 3, 4, 1, 2],
  [2, 5, 6, 2, 3, 1, 1],
  [4, 9, 9, 1, 8, 3, 1], // one input channel, as the stem
  [2, 10, 9, 3, 4, 5, 2], // kernel 5: two taps per phase
  [2, 9, 8, 2, 3, 1, 3], // 1x1 stride 3: most phases of dx get no tap (zeros)
];

/**
 * Geometries for onnxruntime's NCHWc kernels (channel blocks of 8 with AVX2, 16 with AVX-512): whole
 * blocks, and channel counts padded to whole blocks; the cases above keep its plain Conv.
 */
export const BLOCKED_CONV_CASES: [number, number, number, number, number, number, number][] = [
  [2, 7, 7, 16, 16, 3, 1],
  [2, 8, 8, 16, 32, 3, 2], // a stage transition
  [3, 7, 7, 16, 32, 3, 2], // odd size with stride 2
  [2, 8, 8, 16, 32, 1, 2], // its 1x1 shortcut
  [2, 6, 5, 8, 24, 3, 1], // multiples of 8 only
  [2, 9, 9, 32, 16, 5, 1],
  [2, 7, 7, 20, 20, 3, 1], // 20 channels: ReorderInput pads them to the block
  [2, 7, 6, 30, 30, 3, 1], // 30 (not a multiple of 4): the graph pads them
  [2, 8, 8, 30, 60, 3, 2], // the wide student's transition
  [2, 8, 8, 10, 10, 3, 1], // 10: padding would cost 2.56x the work, so plain Conv
];

/** A convolution (padding (kernel - 1) / 2, as forward.ts), and its input and filter gradients for a random upstream gradient. */
export function convAndGradients(
  b: number,
  h: number,
  w: number,
  ci: number,
  co: number,
  k: number,
  s: number,
): tf.Tensor[] {
  const x = tf.tensor4d(randomValues(b * h * w * ci, 1), [b, h, w, ci]);
  const filter = tf.tensor4d(randomValues(k * k * ci * co, 2), [k, k, ci, co]);
  const y = tf.conv2d(x, filter, s, (k - 1) / 2);
  const r = tf.tensor(randomValues(y.size, 3), y.shape);
  const [dx, dw] = tf.grads((a, f) =>
    tf
      .conv2d(a as tf.Tensor4D, f as tf.Tensor4D, s, (k - 1) / 2)
      .mul(r)
      .sum(),
  )([x, filter]);
  return [y, dx!, dw!];
}

/** tfjs' named paddings with strides where they drop or pad rows unevenly. */
export const PADDINGS = [
  ["same", 2],
  ["valid", 2],
  ["valid", 3],
  ["same", 3],
] as const;

/** Input and filter gradients of a 3x3 convolution with a named padding. */
export function paddedConvGradients(pad: "same" | "valid", stride: number, ci = 3, co = 5): tf.Tensor[] {
  const x = tf.tensor4d(randomValues(2 * 9 * 8 * ci, 4), [2, 9, 8, ci]);
  const filter = tf.tensor4d(randomValues(3 * 3 * ci * co, 5), [3, 3, ci, co]);
  const [dx, dw] = tf.grads((a, f) =>
    tf
      .conv2d(a as tf.Tensor4D, f as tf.Tensor4D, stride, pad)
      .square()
      .sum(),
  )([x, filter]);
  return [dx!, dw!];
}
