// The model as data: a flat list of named layers over named tensors (each layer's output tensor
// carries the layer's name). The tfjs forward pass (forward.ts) and the ONNX exporter both walk
// this list, so what trains is exactly what ships.

export interface InputShape {
  height: number;
  width: number;
  channels: number;
}

/** 2-D convolution without bias, square kernel, symmetric zero padding of (kernel - 1) / 2. */
export interface ConvLayer {
  op: "conv";
  name: string;
  input: string;
  kernel: number;
  stride: number;
  inChannels: number;
  outChannels: number;
}

/** Batch normalization over channels (last axis in tfjs' NHWC). */
export interface BatchNormLayer {
  op: "batchnorm";
  name: string;
  input: string;
  channels: number;
}

export interface ReluLayer {
  op: "relu";
  name: string;
  input: string;
}

export interface AddLayer {
  op: "add";
  name: string;
  inputs: [string, string];
}

/** Mean over height and width: [B, H, W, C] -> [B, C]. */
export interface GlobalAvgPoolLayer {
  op: "globalAvgPool";
  name: string;
  input: string;
}

/** Fully connected layer with bias: [B, in] -> [B, units]. */
export interface DenseLayer {
  op: "dense";
  name: string;
  input: string;
  inFeatures: number;
  units: number;
}

export type Layer = ConvLayer | BatchNormLayer | ReluLayer | AddLayer | GlobalAvgPoolLayer | DenseLayer;

export interface Graph {
  input: InputShape;
  numClasses: number;
  layers: Layer[];
  /** Name of the layer whose output is the logits. */
  output: string;
}

/** The name of the graph's input tensor. */
export const INPUT = "input";

export const BN_EPSILON = 1e-5;
/** Weight of the old value in the moving-average update of batch-norm statistics. */
export const BN_MOMENTUM = 0.9;

export type ParamKind = "trainable" | "state";

export interface ParamSpec {
  /** `${layer}.${field}`, e.g. "stage1.block0.conv1.kernel". */
  name: string;
  shape: number[];
  kind: ParamKind;
  init: "he" | "zeros" | "ones" | "glorot";
}

/** Every tensor a graph owns, in a stable order (the checkpoint and export order). */
export function paramSpecs(graph: Graph): ParamSpec[] {
  const specs: ParamSpec[] = [];
  for (const l of graph.layers) {
    switch (l.op) {
      case "conv":
        specs.push({
          name: `${l.name}.kernel`,
          shape: [l.kernel, l.kernel, l.inChannels, l.outChannels],
          kind: "trainable",
          init: "he",
        });
        break;
      case "batchnorm":
        specs.push(
          { name: `${l.name}.gamma`, shape: [l.channels], kind: "trainable", init: "ones" },
          { name: `${l.name}.beta`, shape: [l.channels], kind: "trainable", init: "zeros" },
          { name: `${l.name}.movingMean`, shape: [l.channels], kind: "state", init: "zeros" },
          { name: `${l.name}.movingVariance`, shape: [l.channels], kind: "state", init: "ones" },
        );
        break;
      case "dense":
        specs.push(
          { name: `${l.name}.kernel`, shape: [l.inFeatures, l.units], kind: "trainable", init: "glorot" },
          { name: `${l.name}.bias`, shape: [l.units], kind: "trainable", init: "zeros" },
        );
        break;
      case "relu":
      case "add":
      case "globalAvgPool":
        break;
    }
  }
  return specs;
}

/** Trainable parameter count (batch-norm moving statistics excluded, as usual in papers). */
export function countParams(graph: Graph): number {
  return paramSpecs(graph)
    .filter((p) => p.kind === "trainable")
    .reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** Spatial size of each tensor, following the graph from its input. */
export function tensorShapes(graph: Graph): Map<string, { h: number; w: number; c: number }> {
  const shapes = new Map<string, { h: number; w: number; c: number }>();
  shapes.set(INPUT, { h: graph.input.height, w: graph.input.width, c: graph.input.channels });
  const get = (name: string) => {
    const s = shapes.get(name);
    if (!s) throw new Error(`layer input "${name}" is used before it is defined`);
    return s;
  };
  for (const l of graph.layers) {
    switch (l.op) {
      case "conv": {
        const s = get(l.input);
        if (s.c !== l.inChannels) throw new Error(`layer ${l.name}: expects ${l.inChannels} channels, gets ${s.c}`);
        const pad = (l.kernel - 1) / 2;
        const out = (n: number) => Math.floor((n + 2 * pad - l.kernel) / l.stride) + 1;
        shapes.set(l.name, { h: out(s.h), w: out(s.w), c: l.outChannels });
        break;
      }
      case "batchnorm":
      case "relu":
        shapes.set(l.name, get(l.input));
        break;
      case "add": {
        const [a, b] = [get(l.inputs[0]), get(l.inputs[1])];
        if (a.h !== b.h || a.w !== b.w || a.c !== b.c)
          throw new Error(`layer ${l.name}: adds tensors of different shapes`);
        shapes.set(l.name, a);
        break;
      }
      case "globalAvgPool":
        shapes.set(l.name, { h: 1, w: 1, c: get(l.input).c });
        break;
      case "dense":
        shapes.set(l.name, { h: 1, w: 1, c: l.units });
        break;
    }
  }
  return shapes;
}

/** Multiply-accumulates for one image (convolutions and dense layers). */
export function countMacs(graph: Graph): number {
  const shapes = tensorShapes(graph);
  let macs = 0;
  for (const l of graph.layers) {
    if (l.op === "conv") {
      const o = shapes.get(l.name)!;
      macs += o.h * o.w * l.outChannels * l.inChannels * l.kernel * l.kernel;
    } else if (l.op === "dense") {
      macs += l.inFeatures * l.units;
    }
  }
  return macs;
}
