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
export async function onBothBackends(compute: () => tf.Tensor[]): Promise<{ cpu: Float32Array[]; wasm: Float32Array[] }> {
  const results: Record<"cpu" | "wasm", Float32Array[]> = { cpu: [], wasm: [] };
  for (const name of ["cpu", "wasm"] as const) {
    await useBackend(name);
    const outs = tf.tidy(compute);
    results[name] = outs.map((t) => t.dataSync() as Float32Array);
    tf.dispose(outs);
  }
  return results;
}
