// The tfjs side of a Graph: parameters as named variables, and the forward pass that walks the layers.
import * as tf from "@tensorflow/tfjs";
import { batchNormTraining } from "./batch-norm-op.ts";
import {
  type BatchNormLayer,
  type ConvLayer,
  type Graph,
  type Layer,
  type ParamSpec,
  type ReluLayer,
  BN_EPSILON,
  BN_MOMENTUM,
  INPUT,
  paramSpecs,
} from "./graph.ts";

export interface Model {
  graph: Graph;
  /** Every tensor the graph owns, by ParamSpec name; "state" ones are not trainable. */
  params: Map<string, tf.Variable>;
}

function initialValue(spec: ParamSpec, seed: number): tf.Tensor {
  switch (spec.init) {
    case "zeros":
      return tf.zeros(spec.shape);
    case "ones":
      return tf.ones(spec.shape);
    case "he": {
      // Kaiming normal, fan-out mode, as torchvision's ResNet.
      const [kh, kw, , cout] = spec.shape as [number, number, number, number];
      return tf.randomNormal(spec.shape, 0, Math.sqrt(2 / (kh * kw * cout)), "float32", seed);
    }
    case "glorot": {
      const [fanIn, fanOut] = spec.shape as [number, number];
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      return tf.randomUniform(spec.shape, -limit, limit, "float32", seed);
    }
  }
}

/** A freshly initialized model; the same seed gives the same weights on every backend. */
export function createModel(graph: Graph, seed: number): Model {
  const params = new Map<string, tf.Variable>();
  paramSpecs(graph).forEach((spec, i) => {
    const value = initialValue(spec, seed * 1009 + i);
    // No tfjs variable name: those are global to the engine, and a teacher and a student share layer names.
    params.set(spec.name, tf.variable(value, spec.kind === "trainable"));
    value.dispose();
  });
  return { graph, params };
}

export function trainableVariables(model: Model): tf.Variable[] {
  return paramSpecs(model.graph)
    .filter((s) => s.kind === "trainable")
    .map((s) => model.params.get(s.name)!);
}

export function disposeModel(model: Model): void {
  for (const v of model.params.values()) v.dispose();
}

function param(model: Model, name: string): tf.Variable {
  const p = model.params.get(name);
  if (!p) throw new Error(`model has no parameter "${name}"`);
  return p;
}

export interface ForwardOptions {
  /** Batch statistics and moving-average updates when true; moving statistics when false. */
  training: boolean;
  /**
   * Inference only: fold each batch norm (and a ReLU after it) into the convolution before it, one
   * fused kernel instead of three passes, as the ONNX export does. Default true; false runs every
   * layer as written (the reference the fused path is tested against).
   */
  fuse?: boolean;
}

interface Fusion {
  bn: BatchNormLayer;
  relu: ReluLayer | null;
}

/** conv -> batchnorm (-> relu) chains whose intermediate tensors nothing else reads, by conv name. */
function fusions(graph: Graph): Map<string, Fusion> {
  const readers = new Map<string, Layer[]>();
  for (const l of graph.layers) {
    for (const input of l.op === "add" ? l.inputs : [l.input]) readers.set(input, [...(readers.get(input) ?? []), l]);
  }
  const only = (name: string): Layer | undefined => {
    const r = readers.get(name);
    return r?.length === 1 && name !== graph.output ? r[0] : undefined;
  };
  const out = new Map<string, Fusion>();
  for (const l of graph.layers) {
    if (l.op !== "conv") continue;
    const bn = only(l.name);
    if (bn?.op !== "batchnorm") continue;
    const next = only(bn.name);
    out.set(l.name, { bn, relu: next?.op === "relu" ? next : null });
  }
  return out;
}

/**
 * Logits [B, classes] for images [B, H, W, C] (NHWC, normalized). In training mode the batch-norm
 * moving statistics are updated as a side effect, as in Keras and PyTorch.
 */
export function forward(model: Model, images: tf.Tensor4D, options: ForwardOptions): tf.Tensor2D {
  return run(model, images, options).get(model.graph.output) as tf.Tensor2D;
}

/**
 * The logits and the outputs of the named layers (feature methods compare intermediate tensors).
 * With fusion (inference), a convolution folded with its batch norm and ReLU has only the last one's output.
 */
export function forwardWithFeatures(
  model: Model,
  images: tf.Tensor4D,
  options: ForwardOptions,
  layers: string[],
): { logits: tf.Tensor2D; features: tf.Tensor4D[] } {
  const values = run(model, images, options);
  const features = layers.map((name) => {
    const v = values.get(name);
    if (!v) throw new Error(`model has no layer output "${name}"`);
    return v as tf.Tensor4D;
  });
  return { logits: values.get(model.graph.output) as tf.Tensor2D, features };
}

/**
 * The layer's symmetric zero padding of (kernel - 1) / 2 in a form every tfjs backend runs: tfjs-node
 * (TensorFlow) takes only "same" and "valid". At stride 1 with an odd kernel "same" is that padding;
 * at stride 2 TensorFlow's "same" pads 0 before and 1 after on even sizes, so the input is padded
 * here and the convolution is "valid".
 */
function padded(x: tf.Tensor4D, l: ConvLayer): { x: tf.Tensor4D; pad: "same" | "valid" } {
  const p = (l.kernel - 1) / 2;
  if (l.kernel % 2 !== 1)
    throw new Error(`layer ${l.name}: kernel ${l.kernel} is even; the graph's symmetric padding needs an odd kernel`);
  if (l.stride === 1) return { x, pad: "same" };
  if (p === 0) return { x, pad: "valid" };
  return {
    x: tf.pad(x, [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ]),
    pad: "valid",
  };
}

/** Every layer's output by layer name. */
function run(model: Model, images: tf.Tensor4D, { training, fuse = true }: ForwardOptions): Map<string, tf.Tensor> {
  const values = new Map<string, tf.Tensor>([[INPUT, images]]);
  const get = (name: string) => values.get(name)!;
  const fused = !training && fuse ? fusions(model.graph) : new Map<string, Fusion>();
  const done = new Set<string>();
  for (const l of model.graph.layers) {
    if (done.has(l.name)) continue;
    let y: tf.Tensor;
    switch (l.op) {
      case "conv": {
        const f = fused.get(l.name);
        const kernel = param(model, `${l.name}.kernel`) as tf.Tensor4D;
        const { x, pad } = padded(get(l.input) as tf.Tensor4D, l);
        if (!f) {
          y = tf.conv2d(x, kernel, l.stride, pad);
          break;
        }
        // BN(conv(x, k)) = conv(x, k * scale) + (beta - mean * scale), scale = gamma / sqrt(var + eps).
        const scale = param(model, `${f.bn.name}.movingVariance`)
          .add(BN_EPSILON)
          .rsqrt()
          .mul(param(model, `${f.bn.name}.gamma`));
        const bias = param(model, `${f.bn.name}.beta`).sub(param(model, `${f.bn.name}.movingMean`).mul(scale));
        y = tf.fused.conv2d({
          x,
          filter: kernel.mul(scale) as tf.Tensor4D,
          strides: l.stride,
          pad,
          bias,
          activation: f.relu ? "relu" : "linear",
        });
        done.add(f.bn.name);
        if (f.relu) done.add(f.relu.name);
        values.set((f.relu ?? f.bn).name, y);
        continue;
      }
      case "batchnorm": {
        const x = get(l.input);
        const gamma = param(model, `${l.name}.gamma`);
        const beta = param(model, `${l.name}.beta`);
        const movingMean = param(model, `${l.name}.movingMean`);
        const movingVariance = param(model, `${l.name}.movingVariance`);
        if (training) {
          // One fused op (a fast kernel on wasm, broadcasting ops elsewhere); see engine/batchnorm.ts.
          const { y: normalized, mean, variance, count: n } = batchNormTraining(x, gamma, beta, BN_EPSILON);
          y = normalized;
          tf.tidy(() => {
            const unbiased = variance.mul(n / Math.max(1, n - 1));
            movingMean.assign(movingMean.mul(BN_MOMENTUM).add(mean.mul(1 - BN_MOMENTUM)));
            movingVariance.assign(movingVariance.mul(BN_MOMENTUM).add(unbiased.mul(1 - BN_MOMENTUM)));
          });
        } else {
          const scale = movingVariance.add(BN_EPSILON).rsqrt().mul(gamma);
          y = x.mul(scale).add(beta.sub(movingMean.mul(scale)));
        }
        break;
      }
      case "relu":
        y = tf.relu(get(l.input));
        break;
      case "add":
        y = tf.add(get(l.inputs[0]), get(l.inputs[1]));
        break;
      case "globalAvgPool":
        y = tf.mean(get(l.input), [1, 2]);
        break;
      case "dense":
        y = tf
          .matMul(get(l.input) as tf.Tensor2D, param(model, `${l.name}.kernel`) as tf.Tensor2D)
          .add(param(model, `${l.name}.bias`));
        break;
    }
    values.set(l.name, y);
  }
  return values;
}
