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
function conv(backend: BackendWasm, x: Info, filter: Info, pad: { top: number; bottom: number; left: number; right: number }, dilations: [number, number]): Info {
  return run(backend, "Conv2D", { x, filter }, {
    strides: [1, 1],
    pad: [[0, 0], [pad.top, pad.bottom], [pad.left, pad.right], [0, 0]],
    dilations,
    dataFormat: "NHWC",
    dimRoundingMode: undefined,
  });
}

function checkLayout(dataFormat: string, kernel: string): void {
  if (dataFormat !== "NHWC" && dataFormat !== "channelsLast") throw new Error(`${kernel} on wasm supports NHWC only, got ${dataFormat}`);
}

function conv2DBackpropFilter({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): Info {
  const wasm = backend as BackendWasm;
  const x = inputs.x!;
  const dy = inputs.dy!;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number; pad: Pad; dataFormat: string; dimRoundingMode?: "floor" | "round" | "ceil"; filterShape: [number, number, number, number];
  };
  checkLayout(dataFormat, "Conv2DBackpropFilter");
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
  const [batch, height, width, inC] = x.shape as [number, number, number, number];
  const { top, left } = info.padInfo;
  // The bottom/right padding that makes the output exactly the filter's size; negative means the
  // last rows/columns of x are never read (stride > 1), so they are cropped instead.
  const bottom = info.filterHeight + (info.outHeight - 1) * info.strideHeight - height - top;
  const right = info.filterWidth + (info.outWidth - 1) * info.strideWidth - width - left;

  let xT = run(wasm, "Transpose", { x }, { perm: [3, 1, 2, 0] }); // [Ci, H, W, B]
  if (bottom < 0 || right < 0) {
    const cropped = run(wasm, "Slice", { x: xT }, { begin: [0, 0, 0, 0], size: [inC, height + Math.min(0, bottom), width + Math.min(0, right), batch] });
    free(wasm, xT);
    xT = cropped;
  }
  const dyT = run(wasm, "Transpose", { x: dy }, { perm: [1, 2, 0, 3] }); // [OH, OW, B, Co]
  const grad = conv(wasm, xT, dyT, { top, left, bottom: Math.max(0, bottom), right: Math.max(0, right) }, [info.strideHeight, info.strideWidth]); // [Ci, kh, kw, Co]
  free(wasm, xT, dyT);
  const out = run(wasm, "Transpose", { x: grad }, { perm: [1, 2, 0, 3] });
  free(wasm, grad);
  return out;
}

/** dy [B,OH,OW,C] with (stride - 1) zeros after every row and column: [B, OH*sh, OW*sw, C]. */
function zeroInsert(backend: BackendWasm, dy: Info, sh: number, sw: number): Info {
  const [batch, oh, ow, c] = dy.shape as [number, number, number, number];
  const out = backend.makeOutput([batch, oh * sh, ow * sw, c], "float32");
  const src = backend.typedArrayFromHeap(dy) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  dst.fill(0);
  const rowStride = ow * sw * c;
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < oh; y++) {
      const srcRow = (b * oh + y) * ow * c;
      const dstRow = (b * oh * sh + y * sh) * rowStride;
      for (let x = 0; x < ow; x++) dst.set(src.subarray(srcRow + x * c, srcRow + (x + 1) * c), dstRow + x * sw * c);
    }
  }
  return out;
}

function conv2DBackpropInput({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): Info {
  const wasm = backend as BackendWasm;
  const dy = inputs.dy!;
  const filter = inputs.filter!;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as {
    strides: [number, number] | number; pad: Pad; dataFormat: string; dimRoundingMode?: "floor" | "round" | "ceil"; inputShape: [number, number, number, number];
  };
  checkLayout(dataFormat, "Conv2DBackpropInput");
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode);
  const [, height, width] = inputShape;
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const spread = sh > 1 || sw > 1 ? zeroInsert(wasm, dy, sh, sw) : dy;
  const [, spreadH, spreadW] = spread.shape as [number, number, number, number];
  const top = kh - 1 - info.padInfo.top;
  const left = kw - 1 - info.padInfo.left;
  if (top < 0 || left < 0) throw new Error(`Conv2DBackpropInput on wasm: padding larger than kernel - 1 is not supported`);
  // Rows past the last real dy row are inserted zeros; a negative bottom drops some of them.
  let bottom = height + kh - 1 - spreadH - top;
  let right = width + kw - 1 - spreadW - left;
  let input = spread;
  if (bottom < 0 || right < 0) {
    input = run(wasm, "Slice", { x: spread }, { begin: [0, 0, 0, 0], size: [spread.shape[0], spreadH + Math.min(0, bottom), spreadW + Math.min(0, right), spread.shape[3]] });
    if (spread !== dy) free(wasm, spread);
    bottom = Math.max(0, bottom);
    right = Math.max(0, right);
  }
  const flipped = run(wasm, "Reverse", { x: filter }, { dims: [0, 1] });
  const rotated = run(wasm, "Transpose", { x: flipped }, { perm: [0, 1, 3, 2] }); // [kh, kw, Co, Ci]
  free(wasm, flipped);
  const out = conv(wasm, input, rotated, { top, bottom, left, right }, [1, 1]);
  free(wasm, rotated);
  if (input !== dy) free(wasm, input);
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

/** Registers (or replaces) the wasm gradient kernels above and the fused batch norm. Idempotent. */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const [kernelName, kernelFunc] of [
    ["Conv2DBackpropFilter", conv2DBackpropFilter],
    ["Conv2DBackpropInput", conv2DBackpropInput],
    ["Identity", identity],
  ] as const) {
    if (tf.getKernel(kernelName, "wasm")) tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ kernelName, backendName: "wasm", kernelFunc: kernelFunc as tf.KernelFunc });
  }
  registerBatchNormKernels();
  registered = true;
}
