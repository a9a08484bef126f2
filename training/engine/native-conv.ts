// Convolutions for the wasm training backend on onnxruntime's native CPU kernels (MLAS: AVX2 and
// FMA where the CPU has them). They run about twice as fast as XNNPACK's 128-bit wasm SIMD on the
// development machine, and convolutions are most of a training step. Everything else stays on wasm.
//
// tfjs kernels must return synchronously. onnxruntime-node's public `run()` is a promise around a
// synchronous native call (deferred with setImmediate), so this calls the native session directly
// through onnxruntime-node's binding module: an internal path of the pinned version, covered by the
// tests in test/training/engine/native-conv.test.ts (README.md beside this file: what to check on a bump).
//
// Each op is a small ONNX graph over NHWC tensors (batch symbolic), built once per geometry:
//  - forward: where the channels fill onnxruntime's channel blocks well enough (runsBlocked), its
//    NCHWc convolution (the kernel its optimizer gives convolutions with constant weights, about
//    twice as fast as its plain Conv here), else transpose to NCHW, Conv, transpose back; inference's
//    FusedConv2D (batch norm folded, forward.ts) adds the bias and a ReLU in the same kernel;
//  - input gradient: at stride 1 a convolution of dy with the rotated filter (NCHWc as above),
//    else ConvTranspose with the forward's pads and strides, between transposes;
//  - filter gradient: for each filter tap (i, j), the input pixels that tap reads (a strided Slice of
//    the padded input) times dy, as one GEMM [Ci, N*OH*OW] x [N*OH*OW, Co]; the taps stack into
//    [kh, kw, Ci, Co], tfjs' filter layout.
// Tensors cross without copies: inputs are views of the wasm heap, and onnxruntime writes the
// result into an output tensor tfjs allocated there.
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type NodeProto, encodeModel, int, int64Tensor, ints, node, str, valueInfo } from "../onnx/proto.ts";
import { registerWasmTrainingKernels } from "./wasm-kernels.ts";
import type { KernelArgs } from "./kernel-args.ts";

type Info = tf.TensorInfo;
type Shape4 = [number, number, number, number];
const OPSET = 13;

interface NativeSession {
  run(feeds: Record<string, unknown>, fetches: Record<string, unknown>, options: object): Record<string, unknown>;
}
interface Binding {
  binding: {
    InferenceSession: new () => NativeSession & {
      loadModel(buffer: ArrayBufferLike, offset: number, length: number, options: object): void;
    };
  };
  initOrt(): void;
}
type TensorClass = new (type: "float32", data: Float32Array, dims: readonly number[]) => unknown;

let ort: { binding: Binding; Tensor: TensorClass } | undefined;

/** Loads onnxruntime-node's native binding; throws why it cannot. */
export function loadNativeRuntime(): void {
  if (ort) return;
  const require = createRequire(import.meta.url);
  const binding = require("onnxruntime-node/dist/binding.js") as Binding;
  const { Tensor } = require("onnxruntime-node") as { Tensor: TensorClass };
  binding.initOrt();
  ort = { binding, Tensor };
}

// One thread per session: the data-parallel replicas already keep every core busy, and at these
// sizes onnxruntime's own threads gave nothing on 2 cores.
const SESSION_OPTIONS = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
  executionMode: "sequential",
  logSeverityLevel: 3,
};

/** Sessions by op and geometry, and whether each runs on the NCHWc kernels. */
const sessions = new Map<string, { session: NativeSession; blocked: boolean }>();

function load(bytes: Uint8Array): NativeSession {
  if (!ort) throw new Error("native convolutions used before loadNativeRuntime()");
  const created = new ort.binding.binding.InferenceSession();
  created.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, SESSION_OPTIONS);
  return created;
}

function session(key: string, build: () => Graph): NativeSession {
  let s = sessions.get(key);
  if (!s) {
    const graph = build();
    s = { session: load(graph.bytes), blocked: graph.blocked };
    sessions.set(key, s);
  }
  return s.session;
}

// onnxruntime's NCHWc layout: channels in blocks of the SIMD width, [N, C/block, H, W, block].
const NCHWC = "com.microsoft.nchwc";
let block: number | undefined;

/**
 * The NCHWc channel block of this CPU (8 with AVX2, 16 with AVX-512), read off the shape a
 * ReorderInput of 4 channels returns; 0 where the build has no NCHWc kernels. Throws where
 * onnxruntime-node does not load.
 */
export function nchwcBlock(): number {
  if (block === undefined) {
    loadNativeRuntime();
    try {
      const probe = graphModel(
        [node("ReorderInput", ["x"], ["y"], [int("channels_last", 1)], NCHWC)],
        [["x", [1, 1, 1, 4]]],
        [1, "C", 1, 1],
      );
      const out = load(probe.bytes).run(
        { x: new ort!.Tensor("float32", new Float32Array(4), [1, 1, 1, 4]) },
        { y: null },
        {},
      ) as { y: { dims: number[] } };
      block = out.y.dims[1]! > 1 ? out.y.dims[1]! : 0;
    } catch {
      block = 0;
    }
  }
  return block;
}

/** Channels rounded up to whole NCHWc blocks (the kernels compute the padding channels too). */
const blocked = (channels: number) => Math.ceil(channels / nchwcBlock()) * nchwcBlock();

/**
 * Whether a convolution from `cin` to `cout` channels runs on the NCHWc kernels: where the channels
 * padded to whole blocks add at most half the work. They are about twice as fast per MAC as the plain
 * Conv here, so 20 channels (padded to 24, 1.44x the MACs) gain and 10 (padded to 16, 2.56x) do not,
 * nor does the 1-channel stem.
 */
export function runsBlocked(cin: number, cout: number): boolean {
  return nchwcBlock() > 0 && blocked(cin) * blocked(cout) <= 1.5 * cin * cout;
}

/** The convolution geometry: filter size, strides and explicit (possibly asymmetric) padding. */
interface Geometry {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  top: number;
  bottom: number;
  left: number;
  right: number;
}

function geometry(info: tf.backend_util.Conv2DInfo): Geometry {
  const { top, bottom, left, right } = info.padInfo;
  return {
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    top,
    bottom,
    left,
    right,
  };
}

const key = (op: string, ...parts: (number | number[] | Geometry)[]) => `${op}:${JSON.stringify(parts)}`;
const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];
const FILTER_TO_OIHW = [3, 2, 0, 1]; // tfjs [kh, kw, in, out] -> ONNX [out, in, kh, kw]

/** An encoded graph, and whether it runs on the NCHWc kernels. */
interface Graph {
  bytes: Uint8Array;
  blocked: boolean;
}

function graphModel(
  nodes: NodeProto[],
  inputs: [string, (number | string)[]][],
  output: (number | string)[],
  initializers: object[] = [],
): Graph {
  const blocked = nodes.some((n) => n.domain === NCHWC);
  const bytes = encodeModel({
    opset: OPSET,
    domains: blocked ? { [NCHWC]: 1 } : {},
    nodes,
    initializers,
    inputs: inputs.map(([n, d]) => valueInfo(n, d)),
    outputs: [valueInfo("y", output)],
    name: "conv",
  });
  return { bytes, blocked };
}

const REVERSE_KERNEL = [
  int64Tensor("last", [-1, -1]),
  int64Tensor("beforeFirst", [-(2 ** 31), -(2 ** 31)]),
  int64Tensor("reverse", [-1, -1]),
];

/**
 * An NCHWc convolution from NHWC to NHWC: ReorderInput and ReorderOutput read and write channels
 * last, so no transposes. The filter comes in tfjs' layout [kh, kw, in, out] at every call and is
 * reordered into blocks ([out/b, in/b, kh, kw, b_in, b_out]) inside the graph; it is small.
 * Channels that do not fill the last block are zeros: ReorderInput pads the input itself when its
 * channels are a multiple of 4 (a Pad does it otherwise), the filter and bias get zero rows, and
 * ReorderOutput drops the extra outputs.
 * `flip` convolves with the filter rotated 180 degrees and its channel axes swapped: the input
 * gradient at stride 1.
 */
function blockedConvModel(
  input: string,
  [h, w, cin]: [number, number, number],
  [oh, ow, cout]: [number, number, number],
  g: Geometry,
  pads: number[],
  { flip = false, bias = false, relu = false } = {},
): Graph {
  const b = nchwcBlock();
  const [fin, fout] = flip ? [cout, cin] : [cin, cout]; // the filter's own in and out axes
  const padInput = cin % 4 !== 0;
  const padFilter = fin % b !== 0 || fout % b !== 0;
  const padBias = bias && cout % b !== 0;
  let filter = "filter";
  const nodes: NodeProto[] = [];
  if (padInput) nodes.push(node("Pad", [input, "inputPads"], ["xPadded"]));
  nodes.push(node("ReorderInput", [padInput ? "xPadded" : input], ["xb"], [int("channels_last", 1)], NCHWC));
  if (flip) {
    nodes.push(node("Slice", [filter, "last", "beforeFirst", "kernelAxes", "reverse"], ["rotated"]));
    filter = "rotated";
  }
  if (padFilter) {
    nodes.push(node("Pad", [filter, "filterPads"], ["filterPadded"]));
    filter = "filterPadded";
  }
  if (padBias) nodes.push(node("Pad", ["bias", "biasPads"], ["biasPadded"]));
  nodes.push(
    node("Reshape", [filter, "blocks"], ["f6"]),
    node("Transpose", ["f6"], ["ft"], [ints("perm", flip ? [2, 4, 0, 1, 5, 3] : [4, 2, 0, 1, 3, 5])]),
    node("Reshape", ["ft", "oihw"], ["wb"]),
    node(
      "Conv",
      ["xb", "wb", ...(bias ? [padBias ? "biasPadded" : "bias"] : [])],
      ["yb"],
      [
        ints("kernel_shape", [g.kh, g.kw]),
        ints("strides", [g.sh, g.sw]),
        ints("pads", pads),
        ...(relu ? [str("activation", "Relu")] : []),
      ],
      NCHWC,
    ),
    node("ReorderOutput", ["yb"], ["y"], [int("channels_last", 1), int("channels", cout)], NCHWC),
  );
  const [finB, foutB] = [blocked(fin), blocked(fout)];
  const initializers = [
    int64Tensor("blocks", [g.kh, g.kw, finB / b, b, foutB / b, b]),
    int64Tensor("oihw", [blocked(cout), blocked(cin), g.kh, g.kw]),
    ...(flip ? [...REVERSE_KERNEL, int64Tensor("kernelAxes", [0, 1])] : []),
    ...(padInput ? [int64Tensor("inputPads", [0, 0, 0, 0, 0, 0, 0, blocked(cin) - cin])] : []),
    ...(padFilter ? [int64Tensor("filterPads", [0, 0, 0, 0, 0, 0, finB - fin, foutB - fout])] : []),
    ...(padBias ? [int64Tensor("biasPads", [0, blocked(cout) - cout])] : []),
  ];
  const inputs: [string, (number | string)[]][] = [
    [input, ["N", h, w, cin]],
    ["filter", [g.kh, g.kw, fin, fout]],
    ...(bias ? [["bias", [cout]] as [string, number[]]] : []),
  ];
  return graphModel(nodes, inputs, ["N", oh, ow, cout], initializers);
}

/** Forward convolution; inference (FusedConv2D) adds a bias and a ReLU inside the same graph. */
function forwardModel(
  g: Geometry,
  [, h, w, ci]: Shape4,
  co: number,
  [oh, ow]: [number, number],
  { bias = false, relu = false } = {},
): Graph {
  if (runsBlocked(ci, co))
    return blockedConvModel("x", [h, w, ci], [oh, ow, co], g, [g.top, g.left, g.bottom, g.right], { bias, relu });
  const conv = relu ? "yr" : "yc";
  return graphModel(
    [
      node("Transpose", ["x"], ["xc"], [ints("perm", TO_NCHW)]),
      node("Transpose", ["filter"], ["wc"], [ints("perm", FILTER_TO_OIHW)]),
      node(
        "Conv",
        bias ? ["xc", "wc", "bias"] : ["xc", "wc"],
        [conv],
        [
          ints("kernel_shape", [g.kh, g.kw]),
          ints("strides", [g.sh, g.sw]),
          ints("pads", [g.top, g.left, g.bottom, g.right]),
        ],
      ),
      ...(relu ? [node("Relu", [conv], ["yc"])] : []),
      node("Transpose", ["yc"], ["y"], [ints("perm", TO_NHWC)]),
    ],
    [["x", ["N", h, w, ci]], ["filter", [g.kh, g.kw, ci, co]], ...(bias ? [["bias", [co]] as [string, number[]]] : [])],
    ["N", oh, ow, co],
  );
}

function inputGradientModel(g: Geometry, [, h, w, ci]: Shape4, co: number, [oh, ow]: [number, number]): Graph {
  const inputs: [string, (number | string)[]][] = [
    ["dy", ["N", oh, ow, co]],
    ["filter", [g.kh, g.kw, ci, co]],
  ];
  const flippedPads = [g.kh - 1 - g.top, g.kw - 1 - g.left, g.kh - 1 - g.bottom, g.kw - 1 - g.right];
  if (g.sh === 1 && g.sw === 1 && flippedPads.every((p) => p >= 0)) {
    if (runsBlocked(co, ci)) return blockedConvModel("dy", [oh, ow, co], [h, w, ci], g, flippedPads, { flip: true });
    // Stride 1: a forward Conv of dy with the filter rotated 180 degrees and its channels swapped,
    // which onnxruntime runs 10-20% faster than ConvTranspose.
    return graphModel(
      [
        node("Transpose", ["dy"], ["dyc"], [ints("perm", TO_NCHW)]),
        node("Transpose", ["filter"], ["wt"], [ints("perm", [2, 3, 0, 1])]), // [in, out, kh, kw]
        node("Slice", ["wt", "last", "beforeFirst", "spatial", "reverse"], ["wc"]),
        node("Conv", ["dyc", "wc"], ["dxc"], [ints("kernel_shape", [g.kh, g.kw]), ints("pads", flippedPads)]),
        node("Transpose", ["dxc"], ["y"], [ints("perm", TO_NHWC)]),
      ],
      inputs,
      ["N", h, w, ci],
      [...REVERSE_KERNEL, int64Tensor("spatial", [2, 3])],
    );
  }
  // ConvTranspose's output size is s*(in-1) + output_padding + k - pads; output_padding restores
  // the rows and columns the forward convolution's floor division dropped.
  const outputPadding = [
    h + g.top + g.bottom - (g.sh * (oh - 1) + g.kh),
    w + g.left + g.right - (g.sw * (ow - 1) + g.kw),
  ];
  return graphModel(
    [
      node("Transpose", ["dy"], ["dyc"], [ints("perm", TO_NCHW)]),
      node("Transpose", ["filter"], ["wc"], [ints("perm", FILTER_TO_OIHW)]), // [out, in, kh, kw] = ConvTranspose's [C_in, C_out, kh, kw]
      node(
        "ConvTranspose",
        ["dyc", "wc"],
        ["dxc"],
        [
          ints("kernel_shape", [g.kh, g.kw]),
          ints("strides", [g.sh, g.sw]),
          ints("pads", [g.top, g.left, g.bottom, g.right]),
          ints("output_padding", outputPadding),
        ],
      ),
      node("Transpose", ["dxc"], ["y"], [ints("perm", TO_NHWC)]),
    ],
    inputs,
    ["N", h, w, ci],
  );
}

function filterGradientModel(g: Geometry, [, h, w, ci]: Shape4, co: number, [oh, ow]: [number, number]): Graph {
  const nodes: NodeProto[] = [node("Reshape", ["dy", "dyShape"], ["dyFlat"])];
  const initializers: object[] = [
    int64Tensor("dyShape", [-1, co]),
    int64Tensor("xShape", [-1, ci]),
    int64Tensor("axes", [1, 2]),
    int64Tensor("steps", [g.sh, g.sw]),
    int64Tensor("filterShape", [g.kh, g.kw, ci, co]),
  ];
  let padded = "x";
  if (g.top || g.bottom || g.left || g.right) {
    initializers.push(int64Tensor("pads", [0, g.top, g.left, 0, 0, g.bottom, g.right, 0]));
    nodes.push(node("Pad", ["x", "pads"], ["xp"]));
    padded = "xp";
  }
  const whole = g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && padded === "x" && oh === h && ow === w;
  const taps: string[] = [];
  for (let i = 0; i < g.kh; i++) {
    for (let j = 0; j < g.kw; j++) {
      const t = `${i}_${j}`;
      let rows = padded;
      if (!whole) {
        initializers.push(
          int64Tensor(`start${t}`, [i, j]),
          int64Tensor(`end${t}`, [i + g.sh * (oh - 1) + 1, j + g.sw * (ow - 1) + 1]),
        );
        nodes.push(node("Slice", [padded, `start${t}`, `end${t}`, "axes", "steps"], [`x${t}`]));
        rows = `x${t}`;
      }
      nodes.push(
        node("Reshape", [rows, "xShape"], [`xFlat${t}`]),
        node("Gemm", [`xFlat${t}`, "dyFlat"], [`dw${t}`], [int("transA", 1)]),
      );
      taps.push(`dw${t}`);
    }
  }
  nodes.push(node("Concat", taps, ["dwFlat"], [int("axis", 0)]), node("Reshape", ["dwFlat", "filterShape"], ["y"]));
  return graphModel(
    nodes,
    [
      ["x", ["N", h, w, ci]],
      ["dy", ["N", oh, ow, co]],
    ],
    [g.kh, g.kw, ci, co],
    initializers,
  );
}

/**
 * Runs a cached graph: allocates the output in the wasm heap first (allocation can grow the heap and
 * detach older views), then passes views of the inputs and the output.
 */
function runInto(backend: BackendWasm, s: NativeSession, inputs: Record<string, Info>, outShape: number[]): Info {
  const out = backend.makeOutput(outShape, "float32");
  const { Tensor } = ort!;
  const feeds: Record<string, unknown> = {};
  for (const [name, info] of Object.entries(inputs))
    feeds[name] = new Tensor("float32", backend.typedArrayFromHeap(info) as Float32Array, info.shape);
  s.run(feeds, { y: new Tensor("float32", backend.typedArrayFromHeap(out) as Float32Array, outShape) }, {});
  return out;
}

interface ConvAttrs {
  strides: [number, number] | number;
  pad: "valid" | "same" | number | [[number, number], [number, number], [number, number], [number, number]];
  dataFormat: string;
  dilations?: [number, number] | number;
  dimRoundingMode?: "floor" | "round" | "ceil";
}

const channelsLast = (f: string) => f === "NHWC" || f === "channelsLast";
const undilated = (d: ConvAttrs["dilations"]) =>
  d === undefined || d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1);

function makeKernels(fallback: Record<string, tf.KernelFunc>) {
  const conv2D = (args: KernelArgs): Info => {
    const a = args.attrs as unknown as ConvAttrs;
    if (!channelsLast(a.dataFormat) || !undilated(a.dilations)) return fallback.Conv2D!(args as never) as Info;
    const { x, filter } = args.inputs as { x: Info; filter: Info };
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as Shape4,
      filter.shape as Shape4,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
    );
    const g = geometry(info);
    const out: [number, number] = [info.outHeight, info.outWidth];
    const s = session(key("conv", g, x.shape.slice(1), info.outChannels), () =>
      forwardModel(g, x.shape as Shape4, info.outChannels, out),
    );
    return runInto(args.backend as BackendWasm, s, { x, filter }, [x.shape[0]!, ...out, info.outChannels]);
  };

  const fusedConv2D = (args: KernelArgs): Info => {
    const a = args.attrs as unknown as ConvAttrs & { activation: string };
    const { x, filter, bias, preluActivationWeights } = args.inputs as {
      x: Info;
      filter: Info;
      bias?: Info;
      preluActivationWeights?: Info;
    };
    const relu = a.activation === "relu";
    const plain = a.activation === "linear" || relu;
    if (
      !channelsLast(a.dataFormat) ||
      !undilated(a.dilations) ||
      !plain ||
      preluActivationWeights ||
      (bias && bias.shape.length !== 1)
    )
      return fallback.FusedConv2D!(args as never) as Info;
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as Shape4,
      filter.shape as Shape4,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
    );
    const g = geometry(info);
    const out: [number, number] = [info.outHeight, info.outWidth];
    const s = session(
      key(`fused-${bias ? "bias" : "nobias"}-${a.activation}`, g, x.shape.slice(1), info.outChannels),
      () => forwardModel(g, x.shape as Shape4, info.outChannels, out, { bias: !!bias, relu }),
    );
    return runInto(args.backend as BackendWasm, s, bias ? { x, filter, bias } : { x, filter }, [
      x.shape[0]!,
      ...out,
      info.outChannels,
    ]);
  };

  const conv2DBackpropInput = (args: KernelArgs): Info => {
    const a = args.attrs as unknown as ConvAttrs & { inputShape: Shape4 };
    if (!channelsLast(a.dataFormat)) return fallback.Conv2DBackpropInput!(args as never) as Info;
    const { dy, filter } = args.inputs as { dy: Info; filter: Info };
    const info = tf.backend_util.computeConv2DInfo(
      a.inputShape,
      filter.shape as Shape4,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
    );
    const g = geometry(info);
    const out: [number, number] = [info.outHeight, info.outWidth];
    const s = session(key("dx", g, a.inputShape.slice(1), info.outChannels), () =>
      inputGradientModel(g, a.inputShape, info.outChannels, out),
    );
    return runInto(args.backend as BackendWasm, s, { dy, filter }, [...a.inputShape]);
  };

  const conv2DBackpropFilter = (args: KernelArgs): Info => {
    const a = args.attrs as unknown as ConvAttrs & { filterShape: Shape4 };
    if (!channelsLast(a.dataFormat)) return fallback.Conv2DBackpropFilter!(args as never) as Info;
    const { x, dy } = args.inputs as { x: Info; dy: Info };
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as Shape4,
      a.filterShape,
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
    );
    const g = geometry(info);
    const out: [number, number] = [info.outHeight, info.outWidth];
    const s = session(key("dw", g, x.shape.slice(1), info.outChannels), () =>
      filterGradientModel(g, x.shape as Shape4, info.outChannels, out),
    );
    return runInto(args.backend as BackendWasm, s, { x, dy }, [...a.filterShape]);
  };

  return {
    Conv2D: conv2D,
    FusedConv2D: fusedConv2D,
    Conv2DBackpropInput: conv2DBackpropInput,
    Conv2DBackpropFilter: conv2DBackpropFilter,
  };
}

const KERNELS = ["Conv2D", "FusedConv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"] as const;
let replaced: Map<string, tf.KernelConfig> | undefined;

function register(config: tf.KernelConfig): void {
  tf.unregisterKernel(config.kernelName, "wasm");
  tf.registerKernel(config);
}

/**
 * Routes the wasm backend's convolution kernels to onnxruntime (on) or back to the ones registered
 * before (off). Layouts or options the native graphs do not cover (NCHW, dilation) keep the wasm
 * kernels. Throws if onnxruntime-node cannot load.
 */
export function useNativeConvolutions(on: boolean): void {
  if (on === (replaced !== undefined)) return;
  if (on) {
    loadNativeRuntime();
    registerWasmTrainingKernels(); // the wasm gradient kernels become the fallback
    const previous = new Map<string, tf.KernelConfig>();
    for (const name of KERNELS) {
      const config = tf.getKernel(name, "wasm");
      if (!config) throw new Error(`wasm backend has no "${name}" kernel to replace`);
      previous.set(name, config);
    }
    const kernels = makeKernels(Object.fromEntries([...previous].map(([n, c]) => [n, c.kernelFunc])));
    // Keep each config's setup (the wasm Conv2D binds its C function there): the fallback needs it.
    for (const name of KERNELS) register({ ...previous.get(name)!, kernelFunc: kernels[name] as tf.KernelFunc });
    replaced = previous;
  } else {
    for (const config of replaced!.values()) register(config);
    replaced = undefined;
  }
}

export function nativeConvolutionsActive(): boolean {
  return replaced !== undefined;
}

/**
 * Runs `fn` with the convolutions on tfjs' own kernels, then puts the native ones back. A check of
 * an onnxruntime model against tfjs (the export check, the ONNX teacher's) must not run its reference
 * on onnxruntime too: a wrong layout or folding shared by both would pass unseen.
 */
export async function withTfjsConvolutions<T>(fn: () => T | Promise<T>): Promise<T> {
  const native = nativeConvolutionsActive();
  if (native) useNativeConvolutions(false);
  try {
    return await fn();
  } finally {
    if (native) useNativeConvolutions(true);
  }
}

/**
 * How many native graphs were built (one per op and geometry), or how many of them run on the
 * NCHWc kernels: tests use it to see which ran.
 */
export function nativeGraphCount(which: "all" | "blocked" = "all"): number {
  return which === "all" ? sessions.size : [...sessions.values()].filter((s) => s.blocked).length;
}
