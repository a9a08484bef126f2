// Slice on wasm as copies of contiguous runs. The forward pass pads the input of each stride-2
// convolution (model/forward.ts), and the pad's gradient is a Slice of a [B, H+2, W+2, C] tensor;
// the shipped wasm Slice walks such a non-contiguous slice element by element in JavaScript (7% of a
// training step of `unmodified`). Here every run of whole inner rows is one TypedArray.set (a memcpy).
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { KernelArgs } from "./kernel-args.ts";

type Info = tf.TensorInfo;

export function sliceKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const x = inputs.x!;
  const { begin, size } = attrs as unknown as { begin: number | number[]; size: number | number[] };
  const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size) as [number[], number[]];
  const out = wasm.makeOutput(s, x.dtype); // before taking views: it may grow the heap
  if (tf.util.sizeFromShape(s) === 0) return out;
  const src = wasm.typedArrayFromHeap(x) as Float32Array | Int32Array | Uint8Array;
  const dst = wasm.typedArrayFromHeap(out) as Float32Array | Int32Array | Uint8Array;
  const shape = x.shape;
  const rank = shape.length;
  const strides = new Array<number>(rank);
  for (let i = rank - 1, stride = 1; i >= 0; stride *= shape[i]!, i--) strides[i] = stride;
  // The innermost dimensions taken whole, then the first partial one: one run per index of the rest.
  let k = rank - 1;
  let run = 1;
  while (k >= 0 && b[k] === 0 && s[k] === shape[k]) run *= shape[k--]!;
  if (k < 0) {
    dst.set(src.subarray(0, run));
    return out;
  }
  run *= s[k]!;
  const index = new Array<number>(k).fill(0);
  const runs = tf.util.sizeFromShape(s.slice(0, k));
  for (let r = 0, o = 0; r < runs; r++, o += run) {
    let from = b[k]! * strides[k]!;
    for (let i = 0; i < k; i++) from += (b[i]! + index[i]!) * strides[i]!;
    dst.set(src.subarray(from, from + run), o);
    for (let i = k - 1; i >= 0 && ++index[i]! === s[i]!; i--) index[i] = 0;
  }
  return out;
}
