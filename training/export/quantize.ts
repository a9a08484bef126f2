// Static int8 quantization of an exported fp32 model, written in ONNX's QDQ form: every quantized
// tensor passes through QuantizeLinear -> DequantizeLinear, so the file stays a standard ONNX graph
// that any runtime can run (as float with rounding), and onnxruntime fuses each DQ -> op -> Q group
// into its integer kernel (QLinearConv, QLinearAdd, ...).
//
// - Weights of Conv and Gemm: symmetric, one scale per output channel, in one of WEIGHT_FORMATS
//   (int8 in [-127, 127], 7-bit int8 in [-64, 64], or uint8 around zero point 128), so that w and -w
//   are both exact.
// - Biases: int32 at scale input scale x weight scale (per channel), as the integer kernels add them.
// - Activations (the graph input and the outputs of Conv, Add, GlobalAveragePool and Flatten): uint8,
//   one scale and zero point per tensor, from ranges calibrated on training images (calibrate.ts).
// - A ReLU right after a Conv or Add disappears: its producer writes the ReLU's output tensor, whose
//   range starts at 0, so the zero point is 0 and QuantizeLinear's clamp to [0, 255] is the ReLU.
// - The final Gemm's output (the logits) stays float: nothing reads it but the softmax.
// New tensors are named after the one they quantize: "<t>.q" (integers), "<t>.dq" (what the op reads),
// "<t>.scale", "<t>.zp"; the Q/DQ nodes go unnamed. Short names matter: a ResNet of 51 convolutions
// gains over 200 Q/DQ nodes, and their names were a fifth of the file.
import {
  type DecodedModel,
  type DecodedTensor,
  type NodeProto,
  encodeModel,
  floatTensor,
  floatValues,
  int,
  intTensor,
  node,
} from "../onnx/proto.ts";

/** uint8 activations. */
const ACT_MIN = 0;
const ACT_MAX = 255;
const INT32_MAX = 2 ** 31 - 1;

/** How Conv and Gemm weights are stored: an integer type, the largest |step| used, and the zero point. */
export interface WeightFormat {
  type: "int8" | "uint8";
  max: number;
  zeroPoint: number;
}

/**
 * The weight formats. Why three: x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply uint8
 * activations by int8 weights with an instruction (vpmaddubsw) that adds each pair of products in
 * int16 with saturation: 2 x 255 x 127 = 64770 overflows 32767, so onnxruntime-node's fused kernels
 * there can compute something else than the file means (docs/int8.md).
 * - int8: [-127, 127], the finest; saturates on those CPUs.
 * - int7: [-64, 64] (onnxruntime's reduce_range): 2 x 255 x 64 = 32640 fits int16 on every kernel,
 *   at half the weight resolution.
 * - uint8: 128 + [-127, 127]: onnxruntime runs u8 x u8 kernels, which widen to 32 bits before adding.
 */
export const WEIGHT_FORMATS = {
  int8: { type: "int8", max: 127, zeroPoint: 0 },
  int7: { type: "int8", max: 64, zeroPoint: 0 },
  uint8: { type: "uint8", max: 127, zeroPoint: 128 },
} as const satisfies Record<string, WeightFormat>;
export type WeightFormatName = keyof typeof WEIGHT_FORMATS;
export const WEIGHT_FORMAT_NAMES = Object.keys(WEIGHT_FORMATS) as WeightFormatName[];
/** uint8: int8's resolution without its saturation (measured in docs/int8.md). */
export const DEFAULT_WEIGHT_FORMAT: WeightFormatName = "uint8";

/** Words for the manifest: what the weights are. */
export function describeWeights(name: WeightFormatName): string {
  const f: WeightFormat = WEIGHT_FORMATS[name];
  const range = f.zeroPoint === 0 ? `[-${f.max}, ${f.max}]` : `${f.zeroPoint} + [-${f.max}, ${f.max}]`;
  return `${f.type} in ${range}, symmetric, per output channel`;
}

/** Ops whose activation inputs and output are quantized; Gemm's output stays float. */
const QUANTIZED_OPS = new Set(["Conv", "Gemm", "Add", "GlobalAveragePool", "Flatten"]);
/** Producers whose output a following ReLU can be folded into. */
const RELU_FOLDS_INTO = new Set(["Conv", "Add"]);

export class QuantizationError extends Error {
  override name = "QuantizationError";
}

export interface Range {
  min: number;
  max: number;
}

export interface QParams {
  scale: number;
  zeroPoint: number;
}

/** uint8 scale and zero point covering a range widened to include 0 (so that 0 is exact). */
export function activationParams({ min, max }: Range, tensor = "tensor"): QParams {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max)
    throw new QuantizationError(`${tensor}: calibrated range [${min}, ${max}] is not a finite interval`);
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  if (hi === lo) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / (ACT_MAX - ACT_MIN));
  const zeroPoint = Math.min(ACT_MAX, Math.max(ACT_MIN, Math.round(ACT_MIN - lo / scale)));
  return { scale, zeroPoint };
}

/**
 * Per-channel symmetric weights: channel c along `axis` gets scale max|w_c| / format.max, and w is
 * stored as zeroPoint + round(w / scale).
 */
export function quantizeWeights(
  values: Float32Array,
  dims: number[],
  axis: number,
  format: WeightFormat = WEIGHT_FORMATS[DEFAULT_WEIGHT_FORMAT],
): { q: Int32Array; scales: Float32Array } {
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const absMax = new Float32Array(channels);
  values.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new QuantizationError(`weight value ${v} at index ${i} is not finite`);
    absMax[channelOf(i)] = Math.max(absMax[channelOf(i)]!, Math.abs(v));
  });
  // An all-zero channel: any positive scale represents it exactly.
  const scales = absMax.map((m) => (m > 0 ? Math.fround(m / format.max) : 1));
  const q = Int32Array.from(
    values,
    (v, i) => format.zeroPoint + Math.max(-format.max, Math.min(format.max, Math.round(v / scales[channelOf(i)]!))),
  );
  return { q, scales };
}

/** int32 biases at scale inputScale x weightScales[c] (float32 products, as the integer kernels compute them). */
export function quantizeBias(
  values: Float32Array,
  inputScale: number,
  weightScales: Float32Array,
  tensor = "bias",
): { q: Int32Array; scales: Float32Array } {
  const scales = weightScales.map((s) => Math.fround(Math.fround(inputScale) * s));
  const q = Int32Array.from(values, (v, c) => {
    const r = Math.round(v / scales[c]!);
    if (!(Math.abs(r) <= INT32_MAX))
      throw new QuantizationError(`${tensor}[${c}] = ${v} does not fit int32 at scale ${scales[c]}`);
    return r;
  });
  return { q, scales };
}

/** What the rewrite will do to a graph, decided before calibration (which measures `tensors`). */
export interface QdqPlan {
  /** Activation tensors that get a QuantizeLinear -> DequantizeLinear pair (names in the fp32 graph). */
  tensors: string[];
  /** ReLU nodes folded into their producer, by name of the ReLU's output. */
  foldedRelus: Set<string>;
}

interface GraphIndex {
  initializers: Map<string, DecodedTensor>;
  producer: Map<string, NodeProto>;
  consumers: Map<string, NodeProto[]>;
  outputs: Set<string>;
}

function index(model: DecodedModel): GraphIndex {
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of model.nodes) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  return {
    initializers: new Map(model.initializers.map((t) => [t.name, t])),
    producer,
    consumers,
    outputs: new Set(model.outputs.map((o) => o.name)),
  };
}

function attr(n: NodeProto, name: string): { i?: number; f?: number } | undefined {
  return (n.attribute as { name: string; i?: number; f?: number }[]).find((a) => a.name === name);
}

/** Whether a node is quantized: a supported op over activations, with constant weights where it has them. */
function isQuantized(n: NodeProto, g: GraphIndex): boolean {
  if (!QUANTIZED_OPS.has(n.opType) || (n.domain ?? "") !== "") return false;
  const isConst = (name: string | undefined) => name !== undefined && g.initializers.has(name);
  switch (n.opType) {
    case "Conv":
      return !isConst(n.input[0]) && isConst(n.input[1]) && (n.input[2] === undefined || isConst(n.input[2]));
    case "Gemm": {
      const plain = (a: string, v: number) => (attr(n, a)?.i ?? attr(n, a)?.f ?? v) === v;
      return (
        !isConst(n.input[0]) &&
        isConst(n.input[1]) &&
        (n.input[2] === undefined || isConst(n.input[2])) &&
        plain("transA", 0) &&
        plain("alpha", 1) &&
        plain("beta", 1)
      );
    }
    case "Add":
      return !isConst(n.input[0]) && !isConst(n.input[1]);
    default:
      return !isConst(n.input[0]);
  }
}

/** Decides which tensors are quantized and which ReLUs fold away. */
export function planQdq(model: DecodedModel): QdqPlan {
  const g = index(model);
  const quantized = new Set(model.nodes.filter((n) => isQuantized(n, g)));
  const foldedRelus = new Set<string>();
  for (const n of model.nodes) {
    if (n.opType !== "Relu") continue;
    const [input, output] = [n.input[0]!, n.output[0]!];
    const p = g.producer.get(input);
    const foldable =
      p !== undefined &&
      quantized.has(p) &&
      RELU_FOLDS_INTO.has(p.opType) &&
      g.consumers.get(input)?.length === 1 &&
      !g.outputs.has(input) &&
      !g.outputs.has(output) &&
      (g.consumers.get(output) ?? []).every((c) => quantized.has(c));
    if (foldable) foldedRelus.add(output);
  }
  // After folding, a producer's output is known by its ReLU's output name.
  const renamed = (t: string) => {
    const relu = g.consumers.get(t)?.[0];
    return relu?.opType === "Relu" && foldedRelus.has(relu.output[0]!) ? relu.output[0]! : t;
  };
  const tensors = new Set<string>();
  for (const n of quantized) {
    for (const i of n.input) if (i && !g.initializers.has(i)) tensors.add(i);
    if (n.opType !== "Gemm") tensors.add(renamed(n.output[0]!));
  }
  if (tensors.size === 0)
    throw new QuantizationError("the model has no Conv, Gemm, Add or pooling over activations to quantize");
  return { tensors: [...tensors], foldedRelus };
}

export interface QdqOptions {
  /** How Conv and Gemm weights are stored (default DEFAULT_WEIGHT_FORMAT). */
  weights?: WeightFormatName;
  docString?: string;
  /** Replaces the model's metadata_props. */
  metadata?: Record<string, string>;
}

/**
 * The QDQ int8 model of an fp32 model: `ranges` gives the calibrated float range of every tensor of
 * the plan. Returns the encoded model.
 */
export function toQdq(
  model: DecodedModel,
  plan: QdqPlan,
  ranges: Map<string, Range>,
  options: QdqOptions = {},
): Uint8Array {
  const g = index(model);
  const weightFormat: WeightFormat = WEIGHT_FORMATS[options.weights ?? DEFAULT_WEIGHT_FORMAT];
  const taken = new Set([...g.producer.keys(), ...g.initializers.keys(), ...model.inputs.map((i) => i.name)]);
  const fresh = (name: string) => {
    if (taken.has(name)) throw new QuantizationError(`the model already has a tensor named "${name}"`);
    taken.add(name);
    return name;
  };
  const params = new Map<string, QParams>();
  for (const t of plan.tensors) {
    const range = ranges.get(t);
    if (!range) throw new QuantizationError(`no calibrated range for tensor "${t}"`);
    const p = activationParams(range, t);
    // A folded ReLU lives on in its output's clamp at the zero point: that must be real zero.
    if (plan.foldedRelus.has(t) && p.zeroPoint !== 0)
      throw new QuantizationError(
        `${t}: a ReLU output calibrated to [${range.min}, ${range.max}] has zero point ${p.zeroPoint}, not 0`,
      );
    params.set(t, p);
  }

  const initializers: object[] = [];
  const nodes: NodeProto[] = [];
  const dequantized = new Map<string, string>();
  const qdq = (t: string) => {
    const p = params.get(t)!;
    const [scale, zp, q, dq] = [fresh(`${t}.scale`), fresh(`${t}.zp`), fresh(`${t}.q`), fresh(`${t}.dq`)];
    initializers.push(floatTensor(scale, [], Float32Array.of(p.scale)), intTensor(zp, [], "uint8", [p.zeroPoint]));
    nodes.push(node("QuantizeLinear", [t, scale, zp], [q]), node("DequantizeLinear", [q, scale, zp], [dq]));
    dequantized.set(t, dq);
  };
  /** A constant through DequantizeLinear along `axis`, from its integer values and per-channel scales. */
  const constant = (
    name: string,
    dims: number[],
    type: "int8" | "uint8" | "int32",
    values: Int32Array,
    scales: Float32Array,
    axis: number,
    zeroPoint: number,
  ) => {
    const [qName, scale, zp, dq] = [
      fresh(`${name}.q`),
      fresh(`${name}.scale`),
      fresh(`${name}.zp`),
      fresh(`${name}.dq`),
    ];
    initializers.push(
      intTensor(qName, dims, type, values),
      floatTensor(scale, [scales.length], scales),
      intTensor(zp, [scales.length], type, new Array(scales.length).fill(zeroPoint)),
    );
    nodes.push(node("DequantizeLinear", [qName, scale, zp], [dq], [int("axis", axis)]));
    return dq;
  };
  const replaced = new Set<string>();

  for (const input of model.inputs) if (params.has(input.name)) qdq(input.name);
  for (const n of model.nodes) {
    if (n.opType === "Relu" && plan.foldedRelus.has(n.output[0]!)) continue;
    const out = { ...n, input: [...n.input], output: [...n.output] };
    // The producer of a folded ReLU writes the ReLU's output.
    const relu = g.consumers.get(n.output[0]!)?.[0];
    if (relu?.opType === "Relu" && plan.foldedRelus.has(relu.output[0]!)) out.output[0] = relu.output[0]!;
    if (isQuantized(n, g)) {
      out.input = n.input.map((i) => dequantized.get(i) ?? i);
      if (n.opType === "Conv" || n.opType === "Gemm") {
        const transB = n.opType === "Gemm" && attr(n, "transB")?.i === 1;
        // Output channels: Conv weight [out, in, kh, kw]; Gemm B [in, out], or [out, in] with transB.
        const axis = n.opType === "Conv" || transB ? 0 : 1;
        const w = g.initializers.get(n.input[1]!)!;
        const { q, scales } = quantizeWeights(floatValues(w), w.dims, axis, weightFormat);
        out.input[1] = constant(w.name, w.dims, weightFormat.type, q, scales, axis, weightFormat.zeroPoint);
        replaced.add(w.name);
        if (n.input[2]) {
          const b = g.initializers.get(n.input[2])!;
          const bias = quantizeBias(floatValues(b), params.get(n.input[0]!)!.scale, scales, b.name);
          out.input[2] = constant(b.name, b.dims, "int32", bias.q, bias.scales, 0, 0);
          replaced.add(b.name);
        }
      }
    }
    nodes.push(out);
    if (params.has(out.output[0]!)) qdq(out.output[0]!);
  }
  // Float weights still read by an op that stays float are kept.
  const stillRead = new Set(nodes.flatMap((n) => n.input));
  const kept = model.initializers.filter((t) => !replaced.has(t.name) || stillRead.has(t.name));
  return encodeModel({
    ...model,
    nodes,
    initializers: [...kept, ...initializers],
    docString: options.docString ?? model.docString,
    metadata: options.metadata ?? model.metadata,
  });
}
