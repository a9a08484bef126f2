// Graph -> ONNX ModelProto, encoded with protobufjs against the ONNX schema (onnx/onnx.proto).
// Batch norm that follows a convolution is folded into the convolution's weights and bias; the
// input is NCHW. Outputs: "logits" and "probabilities" (softmax; sigmoid for multi-label models),
// both [N, classes].
import { type Graph, type Layer, BN_EPSILON, INPUT } from "./graph.ts";
import type { Model } from "./forward.ts";
import {
  type NodeProto,
  type TensorProto,
  encodeModel,
  floatTensor as tensorProto,
  int,
  ints,
  valueInfo,
} from "../onnx/proto.ts";

export const DEFAULT_OPSET = 13;
export const INPUT_NAME = "input";
export const OUTPUT_NAMES = ["logits", "probabilities"] as const;

export class UnsupportedLayerError extends Error {
  override name = "UnsupportedLayerError";
}

/** A graph with its tensors as plain arrays (read from a checkpoint, or from a tfjs Model). */
export interface WeightedGraph {
  graph: Graph;
  /** By ParamSpec name (e.g. "stem.conv.kernel"), tfjs layouts: conv [kh, kw, in, out], dense [in, units]. */
  tensors: Map<string, Float32Array>;
}

export interface OnnxOptions {
  opset?: number;
  /** Recorded as the model's doc_string. */
  docString?: string;
  /** Stored as the model's metadata_props, so the file describes itself to other runtimes. */
  metadata?: Record<string, string>;
  /** What turns logits into "probabilities": softmax (default; one class per image) or sigmoid (multi-label). */
  activation?: "softmax" | "sigmoid";
}

function readModel(model: Model): WeightedGraph {
  const tensors = new Map<string, Float32Array>();
  for (const [name, v] of model.params) tensors.set(name, v.dataSync() as Float32Array);
  return { graph: model.graph, tensors };
}

/** Encodes a graph and its weights as an ONNX model. Throws UnsupportedLayerError naming the layer. */
export function graphToOnnx(source: Model | WeightedGraph, options: OnnxOptions = {}): Uint8Array {
  const { graph, tensors } = "params" in source ? readModel(source) : source;
  const opset = options.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < 13) throw new Error(`opset must be an integer >= 13, got ${opset}`);
  const tensor = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`missing tensor "${name}"`);
    return t;
  };

  // How many layers read each tensor: a convolution is folded with its batch norm only when the
  // batch norm is the convolution's sole reader.
  const readers = new Map<string, number>();
  for (const l of graph.layers) for (const i of layerInputs(l)) readers.set(i, (readers.get(i) ?? 0) + 1);
  const _byName = new Map(graph.layers.map((l) => [l.name, l]));

  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  // tfjs layer output name -> ONNX tensor name (folded batch norms alias their convolution's output).
  const alias = new Map<string, string>([[INPUT, INPUT_NAME]]);
  const ref = (name: string) => {
    const a = alias.get(name);
    if (!a) throw new Error(`layer input "${name}" is used before it is defined`);
    return a;
  };
  const folded = new Set<string>();

  for (const l of graph.layers) {
    switch (l.op) {
      case "conv": {
        const [k, cin, cout] = [l.kernel, l.inChannels, l.outChannels];
        const kernel = tensor(`${l.name}.kernel`);
        // tfjs [kh, kw, in, out] -> ONNX [out, in, kh, kw]
        const w = new Float32Array(kernel.length);
        for (let y = 0; y < k; y++)
          for (let x = 0; x < k; x++)
            for (let i = 0; i < cin; i++)
              for (let o = 0; o < cout; o++)
                w[((o * cin + i) * k + y) * k + x] = kernel[((y * k + x) * cin + i) * cout + o]!;
        const inputs = [ref(l.input), `${l.name}.weight`];
        let output = l.name;
        const next = graph.layers.find((n) => n.op === "batchnorm" && n.input === l.name);
        if (next && next.op === "batchnorm" && readers.get(l.name) === 1) {
          const { scale, shift } = bnAffine(next.name, tensor);
          for (let o = 0; o < cout; o++) for (let j = 0; j < cin * k * k; j++) w[o * cin * k * k + j]! *= scale[o]!;
          initializers.push(tensorProto(`${l.name}.bias`, [cout], shift));
          inputs.push(`${l.name}.bias`);
          folded.add(next.name);
          output = next.name;
        }
        initializers.push(tensorProto(`${l.name}.weight`, [cout, cin, k, k], w));
        const pad = (k - 1) / 2;
        nodes.push({
          name: l.name,
          opType: "Conv",
          input: inputs,
          output: [output],
          attribute: [
            ints("kernel_shape", [k, k]),
            ints("strides", [l.stride, l.stride]),
            ints("pads", [pad, pad, pad, pad]),
            ints("dilations", [1, 1]),
            int("group", 1),
          ],
        });
        alias.set(l.name, output);
        if (output !== l.name) alias.set(output, output);
        break;
      }
      case "batchnorm": {
        if (folded.has(l.name)) break;
        const { scale, shift } = bnAffine(l.name, tensor);
        // As an affine Mul+Add on [1, C, 1, 1]: exact, and independent of BatchNormalization's attributes.
        initializers.push(
          tensorProto(`${l.name}.scale`, [1, l.channels, 1, 1], scale),
          tensorProto(`${l.name}.shift`, [1, l.channels, 1, 1], shift),
        );
        nodes.push({
          name: `${l.name}.mul`,
          opType: "Mul",
          input: [ref(l.input), `${l.name}.scale`],
          output: [`${l.name}.scaled`],
          attribute: [],
        });
        nodes.push({
          name: l.name,
          opType: "Add",
          input: [`${l.name}.scaled`, `${l.name}.shift`],
          output: [l.name],
          attribute: [],
        });
        alias.set(l.name, l.name);
        break;
      }
      case "relu":
        nodes.push({ name: l.name, opType: "Relu", input: [ref(l.input)], output: [l.name], attribute: [] });
        alias.set(l.name, l.name);
        break;
      case "add":
        nodes.push({
          name: l.name,
          opType: "Add",
          input: [ref(l.inputs[0]), ref(l.inputs[1])],
          output: [l.name],
          attribute: [],
        });
        alias.set(l.name, l.name);
        break;
      case "globalAvgPool":
        nodes.push({
          name: `${l.name}.gap`,
          opType: "GlobalAveragePool",
          input: [ref(l.input)],
          output: [`${l.name}.nc11`],
          attribute: [],
        });
        nodes.push({
          name: l.name,
          opType: "Flatten",
          input: [`${l.name}.nc11`],
          output: [l.name],
          attribute: [int("axis", 1)],
        });
        alias.set(l.name, l.name);
        break;
      case "dense":
        initializers.push(
          tensorProto(`${l.name}.kernel`, [l.inFeatures, l.units], tensor(`${l.name}.kernel`)),
          tensorProto(`${l.name}.bias`, [l.units], tensor(`${l.name}.bias`)),
        );
        nodes.push({
          name: l.name,
          opType: "Gemm",
          input: [ref(l.input), `${l.name}.kernel`, `${l.name}.bias`],
          output: [l.name],
          attribute: [],
        });
        alias.set(l.name, l.name);
        break;
      default: {
        const unknown = l as { name?: unknown; op?: unknown };
        throw new UnsupportedLayerError(
          `layer "${String(unknown.name)}" has type "${String(unknown.op)}", which the ONNX exporter does not support`,
        );
      }
    }
  }

  const [logits, probabilities] = OUTPUT_NAMES;
  nodes.push({ name: "logits", opType: "Identity", input: [ref(graph.output)], output: [logits], attribute: [] });
  if (options.activation === "sigmoid")
    nodes.push({ name: "sigmoid", opType: "Sigmoid", input: [logits], output: [probabilities], attribute: [] });
  else
    nodes.push({
      name: "softmax",
      opType: "Softmax",
      input: [logits],
      output: [probabilities],
      attribute: [int("axis", 1)],
    });

  const { channels, height, width } = graph.input;
  return encodeModel({
    opset,
    nodes,
    initializers,
    inputs: [valueInfo(INPUT_NAME, ["N", channels, height, width])],
    outputs: [valueInfo(logits, ["N", graph.numClasses]), valueInfo(probabilities, ["N", graph.numClasses])],
    docString: options.docString,
    metadata: options.metadata,
  });
}

function layerInputs(l: Layer): string[] {
  return l.op === "add" ? [...l.inputs] : [l.input];
}

/** Inference-mode batch norm as y = x * scale + shift. */
function bnAffine(name: string, tensor: (n: string) => Float32Array) {
  const gamma = tensor(`${name}.gamma`);
  const beta = tensor(`${name}.beta`);
  const mean = tensor(`${name}.movingMean`);
  const variance = tensor(`${name}.movingVariance`);
  const scale = new Float32Array(gamma.length);
  const shift = new Float32Array(gamma.length);
  for (let c = 0; c < gamma.length; c++) {
    scale[c] = gamma[c]! / Math.sqrt(variance[c]! + BN_EPSILON);
    shift[c] = beta[c]! - mean[c]! * scale[c]!;
  }
  return { scale, shift };
}
