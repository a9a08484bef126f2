// Gradient kernels the tfjs wasm backend lacks (or ships slowly), written as calls to its own fast
// forward convolution (XNNPACK). Registered by initBackend("wasm"); each is tested against `cpu`.
//
//  - Conv2DBackpropFilter (missing in wasm 4.22): dW[i,j,ci,co] = sum_{b,oh,ow} x[b, oh*s+i-pt, ow*s+j-pl, ci]
//    * dy[b,oh,ow,co] is a forward convolution of x transposed to [Ci,H,W,B] (the batch acts as channels)
//    with dy transposed to [OH,OW,B,Co] as the filter, dilated by the stride.
//  - Conv2DBackpropInput (shipped, but ~9x slower than the forward conv): dy zero-inserted by the
//    stride, convolved with the filter rotated 180 degrees and its in/out channels swapped.
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { registerBatchNormKernels } from "./batchnorm.ts";
import { registerReluGradient } from "./relu.ts";
import { sliceKernel } from "./slice.ts";
import type { KernelArgs } from "./kernel-args.ts";

type Info = tf.TensorInfo;
type Pad = "valid" | "same" | number | [[number, number], [number, number], [number, number], [number, number]];

/** Runs a kernel the wasm backend registered, directly on tensor infos (no tape, no engine scope). */
function run(backend: BackendWasm, kernel: string, inputs: Record<string, Info>, attrs: Record<string, unknown>): Info {
  const config = tf.getKernel(kernel, "wasm");
  if (!config) throw new Error(`wasm backend has no "${kernel}" kernel`);
  return config.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend }) as Info;
}

function free(backend: BackendWasm, ...infos: Info[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/** Forward convolution, stride 1, with explicit (possibly asymmetric) padding and a dilation. */
function conv(
  backend: BackendWasm,
  x: Info,
  filter: Info,
  pad: { top: number; bottom: number; left: number; right: number },
  dilations: [number, number],
): Info {
  return run(
    backend,
    "Conv2D",
    { x, filter },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [pad.top, pad.bottom],
        [pad.left, pad.right],
        [0, 0],
      ],
      dilations,
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
    },
  );
}

type Shape4 = [number, number, number, number];
interface GradAttrs {
  strides: [number, number] | number;
  pad: Pad;
  dataFormat: string;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/** The forward convolution's geometry, from a gradient kernel's attributes (NHWC only). */
function forwardInfo(
  kernel: string,
  attrs: tf.NamedAttrMap | undefined,
  xShape: Shape4,
  filterShape: Shape4,
): tf.backend_util.Conv2DInfo {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as GradAttrs;
  if (dataFormat !== "NHWC" && dataFormat !== "channelsLast")
    throw new Error(`${kernel} on wasm supports NHWC only, got ${dataFormat}`);
  return tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, dimRoundingMode);
}

function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const x = inputs.x!;
  const dy = inputs.dy!;
  const info = forwardInfo(
    "Conv2DBackpropFilter",
    attrs,
    x.shape as Shape4,
    (attrs as unknown as { filterShape: Shape4 }).filterShape,
  );
  const [batch, height, width, inC] = x.shape as Shape4;
  const { top, left } = info.padInfo;
  // The bottom/right padding that makes the output exactly the filter's size; negative means the
  // last rows/columns of x are never read (stride > 1), so they are cropped instead.
  const bottom = info.filterHeight + (info.outHeight - 1) * info.strideHeight - height - top;
  const right = info.filterWidth + (info.outWidth - 1) * info.strideWidth - width - left;

  let xT = run(wasm, "Transpose", { x }, { perm: [3, 1, 2, 0] }); // [Ci, H, W, B]
  if (bottom < 0 || right < 0) {
    const cropped = run(
      wasm,
      "Slice",
      { x: xT },
      { begin: [0, 0, 0, 0], size: [inC, height + Math.min(0, bottom), width + Math.min(0, right), batch] },
    );
    free(wasm, xT);
    xT = cropped;
  }
  const dyT = run(wasm, "Transpose", { x: dy }, { perm: [1, 2, 0, 3] }); // [OH, OW, B, Co]
  const grad = conv(wasm, xT, dyT, { top, left, bottom: Math.max(0, bottom), right: Math.max(0, right) }, [
    info.strideHeight,
    info.strideWidth,
  ]); // [Ci, kh, kw, Co]
  free(wasm, xT, dyT);
  const out = run(wasm, "Transpose", { x: grad }, { perm: [1, 2, 0, 3] });
  free(wasm, grad);
  return out;
}

/**
 * Stride 1: dx is dy convolved with the filter rotated 180 degrees, in/out channels swapped.
 * Stride s > 1: dx row h only meets the filter taps i with i = (h + padTop) mod s (mod s), so each of
 * the s*s output phases (h mod s, w mod s) is a stride-1 convolution of dy with that phase's taps,
 * and the phases interleave into dx. That does exactly the forward convolution's arithmetic, where
 * convolving dy with zeros inserted between its rows and columns would do s*s times as much.
 */
function conv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const dy = inputs.dy!;
  const filter = inputs.filter!;
  const inputShape = (attrs as unknown as { inputShape: Shape4 }).inputShape;
  const info = forwardInfo("Conv2DBackpropInput", attrs, inputShape, filter.shape as Shape4);
  const [batch, height, width, inC] = inputShape;
  const [kh, kw, , outC] = filter.shape as Shape4;
  const { strideHeight: sh, strideWidth: sw } = info;
  const weights = (wasm.typedArrayFromHeap(filter) as Float32Array).slice(); // small; a copy survives heap growth

  // Per axis and phase: the taps, the output positions, and the padding of dy for the convolution.
  const axis = (size: number, kernel: number, stride: number, padBefore: number, dySize: number, phase: number) => {
    const first = (((phase + padBefore) % stride) + stride) % stride;
    const taps: number[] = [];
    for (let t = first; t < kernel; t += stride) taps.push(t);
    const count = phase < size ? Math.ceil((size - phase) / stride) : 0;
    const q = (phase + padBefore - first) / stride; // dy index of output 0 for the first tap
    const before = taps.length - 1 - q;
    const after = count - dySize - before + taps.length - 1;
    return { taps, count, before, after };
  };

  const parts: { part: Info; ph: number; pw: number }[] = [];
  let complete = true;
  for (let ph = 0; ph < sh; ph++) {
    for (let pw = 0; pw < sw; pw++) {
      const rows = axis(height, kh, sh, info.padInfo.top, info.outHeight, ph);
      const cols = axis(width, kw, sw, info.padInfo.left, info.outWidth, pw);
      if (rows.count === 0 || cols.count === 0) continue;
      if (rows.taps.length === 0 || cols.taps.length === 0) {
        complete = false; // this phase of dx is zero
        continue;
      }
      // The phase's taps, rotated 180 degrees, as [T, U, Co, Ci].
      const [T, U] = [rows.taps.length, cols.taps.length];
      const sub = new Float32Array(T * U * outC * inC);
      for (let t = 0; t < T; t++) {
        for (let u = 0; u < U; u++) {
          const src = (rows.taps[T - 1 - t]! * kw + cols.taps[U - 1 - u]!) * inC * outC;
          const dst = (t * U + u) * outC * inC;
          for (let ci = 0; ci < inC; ci++)
            for (let co = 0; co < outC; co++) sub[dst + co * inC + ci] = weights[src + ci * outC + co]!;
        }
      }
      const rotated = wasm.makeOutput([T, U, outC, inC], "float32", undefined, sub);
      parts.push({ part: convCropping(wasm, dy, rotated, rows, cols), ph, pw });
      free(wasm, rotated);
    }
  }
  if (sh === 1 && sw === 1 && parts.length === 1) return parts[0]!.part;

  const out = wasm.makeOutput(inputShape, "float32");
  const dst = wasm.typedArrayFromHeap(out) as Float32Array;
  if (!complete) dst.fill(0);
  for (const { part, ph, pw } of parts) {
    const src = wasm.typedArrayFromHeap(part) as Float32Array;
    const [, rows, cols] = part.shape as [number, number, number, number];
    let p = 0;
    for (let b = 0; b < batch; b++) {
      for (let a = 0; a < rows; a++) {
        let q = ((b * height + a * sh + ph) * width + pw) * inC;
        for (let c = 0; c < cols; c++, q += (sw - 1) * inC) for (let k = 0; k < inC; k++) dst[q++] = src[p++]!;
      }
    }
    free(wasm, part);
  }
  return out;
}

/** A stride-1 convolution of dy padded by `before`/`after` rows and columns; negative amounts crop dy. */
function convCropping(
  backend: BackendWasm,
  dy: Info,
  filter: Info,
  rows: { before: number; after: number },
  cols: { before: number; after: number },
): Info {
  const [batch, h, w, c] = dy.shape as [number, number, number, number];
  const crop = [rows.before, rows.after, cols.before, cols.after].map((v) => Math.max(0, -v)) as [
    number,
    number,
    number,
    number,
  ];
  const input = crop.some((v) => v > 0)
    ? run(
        backend,
        "Slice",
        { x: dy },
        { begin: [0, crop[0], crop[2], 0], size: [batch, h - crop[0] - crop[1], w - crop[2] - crop[3], c] },
      )
    : dy;
  const out = conv(
    backend,
    input,
    filter,
    {
      top: Math.max(0, rows.before),
      bottom: Math.max(0, rows.after),
      left: Math.max(0, cols.before),
      right: Math.max(0, cols.after),
    },
    [1, 1],
  );
  if (input !== dy) free(backend, input);
  return out;
}

/**
 * The shipped wasm Identity copies the tensor; tfjs clones every tensor an op saves for its gradient,
 * so training copied most activations once more. Tensors are immutable (a variable's assign swaps
 * its data), so sharing the data with a reference count is safe, as the cpu backend does.
 */
function identity({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): Info {
  const x = inputs.x!;
  (backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

let registered = false;

/** Registers (or replaces) the wasm gradient kernels above, Slice (slice.ts), the fused batch norm and the ReLU gradient. Idempotent. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const [kernelName, kernelFunc] of [
    ["Conv2DBackpropFilter", conv2DBackpropFilter],
    ["Conv2DBackpropInput", conv2DBackpropInput],
    ["Identity", identity],
    ["Slice", sliceKernel],
  ] as const) {
    if (tf.getKernel(kernelName, "wasm")) tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: kernelFunc as tf.KernelFunc });
  }
  registerBatchNormKernels();
  registerReluGradient();
  registered = true;
}
