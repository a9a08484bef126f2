// Batch normalization in training mode as one fused wasm kernel with its own gradient, plugged into
// the op the model calls (model/batch-norm-op.ts).
//
// Written with tfjs' broadcasting ops (moments, sub, mul, add), one BN layer costs ~20 kernel calls
// forward and backward, several of them full-size (the gradients of mean and sum materialize
// ones(x.shape)), and on wasm the reductions over the leading axes transpose the tensor first. On
// wasm this file registers two kernels that do it in three passes over memory (JS loops on the wasm
// heap): forward = one pass for per-channel sums + one to write y; backward = one pass for
// per-channel sums of dy and dy*x + one to write dx. Other backends (tfjs-node's native kernels,
// cpu) keep the composite form.
//
// Data-parallel training (data-parallel.ts) needs the batch statistics of the whole batch, not of
// each replica's share: the per-channel sums go through `allReduce` (summed across replicas)
// before they are used, in both directions, so N replicas compute exactly what one process
// computes on the whole batch ("synchronized batch norm").
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { BN_TRAIN, BN_TRAIN_GRAD, batchNormAllReduce, recordBatchNormCount } from "../model/batch-norm-op.ts";
import { type SimdPasses, backendSimdPasses } from "./simd-passes.ts";
import type { KernelArgs } from "./kernel-args.ts";

// ---- per-channel loops over [rows, C] data (channels innermost) ----
// Each walks one group of four channels down all rows with the group's constants in locals, which
// V8 compiles to tight code (several times faster than a row-major loop indexing small arrays).

/** sum[c] = sum of u, dot[c] = sum of u * v over all rows, for channels from `from` on. */
function channelSums(
  u: Float32Array,
  v: Float32Array,
  channels: number,
  sum: Float64Array,
  dot: Float64Array,
  from = 0,
): void {
  const n = u.length;
  let c = from;
  for (; c + 4 <= channels; c += 4) {
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0,
      d0 = 0,
      d1 = 0,
      d2 = 0,
      d3 = 0;
    for (let p = c; p < n; p += channels) {
      const u0 = u[p]!,
        u1 = u[p + 1]!,
        u2 = u[p + 2]!,
        u3 = u[p + 3]!;
      s0 += u0;
      s1 += u1;
      s2 += u2;
      s3 += u3;
      d0 += u0 * v[p]!;
      d1 += u1 * v[p + 1]!;
      d2 += u2 * v[p + 2]!;
      d3 += u3 * v[p + 3]!;
    }
    sum[c] = s0;
    sum[c + 1] = s1;
    sum[c + 2] = s2;
    sum[c + 3] = s3;
    dot[c] = d0;
    dot[c + 1] = d1;
    dot[c + 2] = d2;
    dot[c + 3] = d3;
  }
  for (; c < channels; c++) {
    let s0 = 0,
      d0 = 0;
    for (let p = c; p < n; p += channels) {
      s0 += u[p]!;
      d0 += u[p]! * v[p]!;
    }
    sum[c] = s0;
    dot[c] = d0;
  }
}

/** out = a[c] * u + b[c] * v + k[c], elementwise, for channels from `from` on. */
function channelAffine(
  out: Float32Array,
  u: Float32Array,
  a: Float32Array,
  v: Float32Array,
  b: Float32Array,
  k: Float32Array,
  channels: number,
  from = 0,
): void {
  const n = u.length;
  let c = from;
  for (; c + 4 <= channels; c += 4) {
    const a0 = a[c]!,
      a1 = a[c + 1]!,
      a2 = a[c + 2]!,
      a3 = a[c + 3]!;
    const b0 = b[c]!,
      b1 = b[c + 1]!,
      b2 = b[c + 2]!,
      b3 = b[c + 3]!;
    const k0 = k[c]!,
      k1 = k[c + 1]!,
      k2 = k[c + 2]!,
      k3 = k[c + 3]!;
    for (let p = c; p < n; p += channels) {
      out[p] = a0 * u[p]! + b0 * v[p]! + k0;
      out[p + 1] = a1 * u[p + 1]! + b1 * v[p + 1]! + k1;
      out[p + 2] = a2 * u[p + 2]! + b2 * v[p + 2]! + k2;
      out[p + 3] = a3 * u[p + 3]! + b3 * v[p + 3]! + k3;
    }
  }
  for (; c < channels; c++) {
    const a0 = a[c]!,
      b0 = b[c]!,
      k0 = k[c]!;
    for (let p = c; p < n; p += channels) out[p] = a0 * u[p]! + b0 * v[p]! + k0;
  }
}

function zeros(n: number): Float32Array {
  return new Float32Array(n);
}

// The same passes on the wasm heap with SIMD (simd-passes.ts) for channels in groups of four; the
// JS loops above do the remaining C mod 4 channels (and everything where SIMD is unavailable).

interface Passes {
  backend: BackendWasm;
  simd: SimdPasses | null;
  /** Channels done with SIMD (a multiple of 4). */
  simdChannels: number;
  /** Heap scratch for the SIMD sums and coefficients. */
  scratch: number;
}

const scratchOf = new WeakMap<BackendWasm, { ptr: number; bytes: number }>();

/** The emscripten module under the wasm backend (its typings omit these members). */
interface Emscripten {
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  HEAPU8: Uint8Array;
}
const emscripten = (backend: BackendWasm) => backend.wasm as unknown as Emscripten;

/** Call before taking heap views: it may allocate (and so grow the heap). */
function passes(backend: BackendWasm, channels: number): Passes {
  const module = emscripten(backend);
  const simd = backendSimdPasses(backend);
  const groups = simd ? Math.floor(channels / 4) : 0;
  const bytes = groups * 112; // sums: 64 bytes a group; coefficients: 48
  let s = scratchOf.get(backend);
  if (!s || s.bytes < bytes) {
    if (s) module._free(s.ptr);
    s = { ptr: module._malloc(Math.max(bytes, 1024)) >>> 0, bytes: Math.max(bytes, 1024) };
    scratchOf.set(backend, s);
  }
  return { backend, simd, simdChannels: groups * 4, scratch: s.ptr };
}

const offsetOf = (p: Passes, t: tf.TensorInfo) => p.backend.getMemoryOffset(t.dataId) as number;
const heap = (p: Passes) => emscripten(p.backend).HEAPU8.buffer;

function sums(
  p: Passes,
  u: tf.TensorInfo,
  v: tf.TensorInfo,
  uv: Float32Array,
  vv: Float32Array,
  channels: number,
  sum: Float64Array,
  dot: Float64Array,
): void {
  const groups = p.simdChannels / 4;
  if (groups > 0) {
    const acc = new Float64Array(heap(p), p.scratch, groups * 8);
    acc.fill(0);
    p.simd!.sums(offsetOf(p, u), offsetOf(p, v), uv.length / channels, channels * 4, groups, p.scratch);
    for (let c = 0; c < p.simdChannels; c++) {
      sum[c] = acc[(c >> 2) * 8 + (c & 3)]!;
      dot[c] = acc[(c >> 2) * 8 + 4 + (c & 3)]!;
    }
  }
  channelSums(uv, vv, channels, sum, dot, p.simdChannels);
}

function affine(
  p: Passes,
  out: tf.TensorInfo,
  outv: Float32Array,
  u: tf.TensorInfo,
  uv: Float32Array,
  a: Float32Array,
  v: tf.TensorInfo,
  vv: Float32Array,
  b: Float32Array,
  k: Float32Array,
  channels: number,
): void {
  const groups = p.simdChannels / 4;
  if (groups > 0) {
    const coef = new Float32Array(heap(p), p.scratch, groups * 12);
    for (let c = 0; c < p.simdChannels; c++) {
      const at = (c >> 2) * 12 + (c & 3);
      coef[at] = a[c]!;
      coef[at + 4] = b[c]!;
      coef[at + 8] = k[c]!;
    }
    p.simd!.affine(
      offsetOf(p, out),
      offsetOf(p, u),
      offsetOf(p, v),
      p.scratch,
      uv.length / channels,
      channels * 4,
      groups,
    );
  }
  channelAffine(outv, uv, a, vv, b, k, channels, p.simdChannels);
}

// ---- wasm kernels ----

function f32(backend: BackendWasm, info: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

function batchNormTrainKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const wasm = backend as BackendWasm;
  const { x, gamma, beta } = inputs as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
  const epsilon = (attrs as { epsilon: number }).epsilon;
  const channels = x.shape[x.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(x.shape) / channels;
  // Allocate every output before taking heap views: a malloc may grow (and detach) the heap.
  const p = passes(wasm, channels);
  const yInfo = wasm.makeOutput(x.shape, "float32");
  const meanInfo = wasm.makeOutput([channels], "float32");
  const varInfo = wasm.makeOutput([channels], "float32");
  const [xv, yv, g, b, meanOut, varOut] = [x, yInfo, gamma, beta, meanInfo, varInfo].map((t) => f32(wasm, t)) as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];

  // [count, sum x (C), sum x^2 (C)] in doubles: E[x^2] - E[x]^2 is exact enough in float64.
  const stats = new Float64Array(1 + 2 * channels);
  stats[0] = rows;
  const sum = stats.subarray(1, 1 + channels);
  const sumSq = stats.subarray(1 + channels);
  sums(p, x, x, xv, xv, channels, sum, sumSq);
  batchNormAllReduce()?.(stats);
  const n = stats[0]!;
  recordBatchNormCount(n);
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const mean = sum[c]! / n;
    const variance = Math.max(0, sumSq[c]! / n - mean * mean);
    meanOut[c] = mean;
    varOut[c] = variance;
    scale[c] = g[c]! / Math.sqrt(variance + epsilon);
    shift[c] = b[c]! - mean * scale[c]!;
  }
  affine(p, yInfo, yv, x, xv, scale, x, xv, zeros(channels), shift, channels);
  return [yInfo, meanInfo, varInfo];
}

function batchNormTrainGradKernel({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const wasm = backend as BackendWasm;
  const { dy, dmean, dvariance, x, gamma, mean, variance } = inputs as Record<string, tf.TensorInfo>;
  const epsilon = (attrs as { epsilon: number }).epsilon;
  const channels = x!.shape[x!.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(x!.shape) / channels;
  const p = passes(wasm, channels);
  const dxInfo = wasm.makeOutput(x!.shape, "float32");
  const dgammaInfo = wasm.makeOutput([channels], "float32");
  const dbetaInfo = wasm.makeOutput([channels], "float32");
  const [dyv, dmv, dvv, xv, g, m, vr, dxv, dgOut, dbOut] = [
    dy,
    dmean,
    dvariance,
    x,
    gamma,
    mean,
    variance,
    dxInfo,
    dgammaInfo,
    dbetaInfo,
  ].map((t) => f32(wasm, t!)) as Float32Array[] as [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array,
  ];

  // [count, sum dy (C), sum dy*x (C), dmean (C), dvariance (C)]: the replicas' shares of each.
  const stats = new Float64Array(1 + 4 * channels);
  stats[0] = rows;
  const sumDy = stats.subarray(1, 1 + channels);
  const sumDyX = stats.subarray(1 + channels, 1 + 2 * channels);
  sums(p, dy!, x!, dyv, xv, channels, sumDy, sumDyX);
  // This replica's own parameter gradients (the data-parallel engine sums them over replicas).
  const invStd = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    invStd[c] = 1 / Math.sqrt(vr[c]! + epsilon);
    dbOut[c] = sumDy[c]!;
    dgOut[c] = invStd[c]! * (sumDyX[c]! - m[c]! * sumDy[c]!);
    stats[1 + 2 * channels + c] = dmv[c]!;
    stats[1 + 3 * channels + c] = dvv[c]!;
  }
  batchNormAllReduce()?.(stats);
  const n = stats[0]!;
  // dx = g*(dy - sum(dy)/n - xhat*sum(dy*xhat)/n) + dmean/n + 2*dvariance*(x - mean)/n with
  // g = gamma*invStd, xhat = (x - mean)*invStd, so dx = g*dy + B*(x - mean) - g*sum(dy)/n + dmean/n,
  // B = -g*invStd^2*sum(dy*(x - mean))/n + 2*dvariance/n.
  const a = new Float32Array(channels);
  const bx = new Float32Array(channels);
  const k = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const gi = g[c]! * invStd[c]!;
    const sumDyCentered = sumDyX[c]! - m[c]! * sumDy[c]!;
    const coefX = (-gi * invStd[c]! * invStd[c]! * sumDyCentered) / n + (2 * stats[1 + 3 * channels + c]!) / n;
    a[c] = gi;
    bx[c] = coefX;
    k[c] = -coefX * m[c]! - (gi * sumDy[c]!) / n + stats[1 + 2 * channels + c]! / n;
  }
  affine(p, dxInfo, dxv, dy!, dyv, a, x!, xv, bx, k, channels);
  return [dxInfo, dgammaInfo, dbetaInfo];
}

let registered = false;

/** Registers the fused kernels for wasm and the op's gradient (idempotent). */
export function registerBatchNormKernels(): void {
  if (registered) return;
  tf.registerKernel({
    kernelName: BN_TRAIN,
    backendName: "wasm",
    kernelFunc: batchNormTrainKernel as unknown as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: BN_TRAIN_GRAD,
    backendName: "wasm",
    kernelFunc: batchNormTrainGradKernel as unknown as tf.KernelFunc,
  });
  tf.registerGradient({
    kernelName: BN_TRAIN,
    inputsToSave: ["x", "gamma"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [dy, dmean, dvariance] = dys as tf.Tensor[];
      const [x, gamma, mean, variance] = saved;
      // One kernel computes all three gradients; it runs here, once, and each thunk hands out its part.
      const [dx, dgamma, dbeta] = tf
        .engine()
        .runKernel(
          BN_TRAIN_GRAD,
          { dy: dy!, dmean: dmean!, dvariance: dvariance!, x: x!, gamma: gamma!, mean: mean!, variance: variance! },
          attrs as tf.NamedAttrMap,
        ) as tf.Tensor[];
      return { x: () => dx!, gamma: () => dgamma!, beta: () => dbeta! };
    },
  });
  registered = true;
}
