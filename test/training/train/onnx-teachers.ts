// ONNX image classifiers built unlike the project's exporter, as teachers from elsewhere come: NHWC
// input, Gemm on the flattened image instead of convolutions, outputs named otherwise, extra outputs,
// a softmax at the end, metadata or none. Each comes with its logits computed here in plain JS.
import { node, encodeModel, floatTensor, int, valueInfo } from "../../../training/onnx/proto.ts";

export interface FixtureTeacher {
  bytes: Uint8Array;
  /** Logits for one image given NHWC in the teacher's own normalization, at its size. */
  logits(image: Float32Array): number[];
}

function weights(count: number, seed: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 1.7 + seed) * 0.5);
}

/**
 * NHWC input [N, h, w, c] -> Flatten -> Gemm with `classes` outputs, named `output`; optionally a
 * Softmax after it (the output then holds probabilities; `raw` names the Gemm's output, also an
 * output of the file with `exposeRaw`), and metadata_props.
 */
export function gemmTeacher(o: {
  h: number;
  w: number;
  c: number;
  classes: number;
  output?: string;
  softmax?: boolean;
  raw?: string;
  exposeRaw?: boolean;
  metadata?: Record<string, string>;
  symbolic?: boolean;
}): FixtureTeacher {
  const size = o.h * o.w * o.c;
  const W = weights(size * o.classes, 1);
  const b = weights(o.classes, 2);
  const output = o.output ?? "scores";
  const raw = o.raw ?? "raw";
  const nodes = [
    node("Flatten", ["image"], ["flat"], [int("axis", 1)]),
    node("Gemm", ["flat", "W", "b"], [o.softmax ? raw : output]),
  ];
  if (o.softmax) nodes.push(node("Softmax", [raw], [output], [int("axis", 1)]));
  const bytes = encodeModel({
    opset: 13,
    nodes,
    initializers: [floatTensor("W", [size, o.classes], W), floatTensor("b", [o.classes], b)],
    inputs: [valueInfo("image", o.symbolic ? ["N", "H", "W", "C"] : ["N", o.h, o.w, o.c])],
    outputs: [valueInfo(output, ["N", o.classes]), ...(o.exposeRaw ? [valueInfo(raw, ["N", o.classes])] : [])],
    name: "gemm-teacher",
    metadata: o.metadata,
  });
  return {
    bytes,
    logits: (x) =>
      Array.from({ length: o.classes }, (_, k) => b[k]! + x.reduce((s, v, i) => s + v * W[i * o.classes + k]!, 0)),
  };
}

/**
 * NCHW input [N, c, h, w] -> 1x1 Conv to `classes` channels -> GlobalAveragePool -> Flatten: output
 * "class_scores"; extra outputs "feature_map" (the convolution's [N, classes, h, w]) and "embedding"
 * ([N, 5], the pooled Gemm of another head).
 */
export function convTeacher(o: { h: number; w: number; c: number; classes: number }): FixtureTeacher {
  const Wc = weights(o.classes * o.c, 3);
  const bc = weights(o.classes, 4);
  const We = weights(o.classes * 5, 5);
  const bytes = encodeModel({
    opset: 13,
    nodes: [
      node("Conv", ["pixels", "Wc", "bc"], ["feature_map"]),
      node("GlobalAveragePool", ["feature_map"], ["pooled"]),
      node("Flatten", ["pooled"], ["class_scores"], [int("axis", 1)]),
      node("Gemm", ["class_scores", "We"], ["embedding"]),
    ],
    initializers: [
      floatTensor("Wc", [o.classes, o.c, 1, 1], Wc),
      floatTensor("bc", [o.classes], bc),
      floatTensor("We", [o.classes, 5], We),
    ],
    inputs: [valueInfo("pixels", ["batch", o.c, o.h, o.w])],
    outputs: [
      valueInfo("embedding", ["batch", 5]),
      valueInfo("feature_map", ["batch", o.classes, o.h, o.w]),
      valueInfo("class_scores", ["batch", o.classes]),
    ],
    name: "conv-teacher",
  });
  return {
    bytes,
    logits: (x) => {
      // x is NHWC: the mean of each channel over the image, then the 1x1 convolution.
      const means = Array.from(
        { length: o.c },
        (_, ch) => x.filter((_, i) => i % o.c === ch).reduce((a, v) => a + v, 0) / (o.h * o.w),
      );
      return Array.from(
        { length: o.classes },
        (_, k) => bc[k]! + means.reduce((s, m, ch) => s + m * Wc[k * o.c + ch]!, 0),
      );
    },
  };
}

/** Two image inputs: not a classifier the pipeline can feed. */
export function twoInputModel(): Uint8Array {
  return encodeModel({
    opset: 13,
    nodes: [node("Add", ["a", "b"], ["sum"])],
    inputs: [valueInfo("a", ["N", 1, 2, 2]), valueInfo("b", ["N", 1, 2, 2])],
    outputs: [valueInfo("sum", ["N", 1, 2, 2])],
  });
}
