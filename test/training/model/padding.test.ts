// The forward pass pads convolutions only with "same" (stride 1) or an explicit pad then "valid"
// (stride 2), which every tfjs backend runs. Both must equal the graph's symmetric padding of
// (kernel - 1) / 2, which the ONNX export writes as pads: checked here against tfjs' numeric padding.
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { createModel, disposeModel, forward } from "../../../training/model/forward.ts";
import type { Graph } from "../../../training/model/graph.ts";
import { INPUT } from "../../../training/model/graph.ts";
import { randomValues, relativeError } from "../engine/gradcheck.ts";

/** One convolution and the dense layer after it, so forward() returns the convolution's pooled output. */
function oneConv(height: number, width: number, kernel: number, stride: number): Graph {
  return {
    input: { height, width, channels: 2 },
    numClasses: 3,
    output: "fc",
    layers: [
      { op: "conv", name: "c", input: INPUT, kernel, stride, inChannels: 2, outChannels: 3 },
      { op: "globalAvgPool", name: "pool", input: "c" },
      { op: "dense", name: "fc", input: "pool", inFeatures: 3, units: 3 },
    ],
  };
}

describe("convolution padding in the forward pass", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  it.each([
    [8, 8, 3, 1],
    [7, 7, 3, 1],
    [8, 8, 3, 2], // even size, stride 2: TensorFlow's "same" would pad 0 before, 1 after
    [7, 6, 3, 2],
    [8, 8, 1, 2],
    [9, 9, 5, 2],
    [6, 6, 5, 1],
  ])("%ix%i input, kernel %i, stride %i: equals symmetric numeric padding", (h, w, kernel, stride) => {
    const graph = oneConv(h, w, kernel, stride);
    const model = createModel(graph, 3);
    const images = tf.tensor4d(randomValues(2 * h * w * 2, 5), [2, h, w, 2]);
    const got = tf.tidy(() => forward(model, images, { training: false, fuse: false }).dataSync());
    const want = tf.tidy(() => {
      const conv = tf.conv2d(
        images,
        model.params.get("c.kernel") as tf.Variable as tf.Tensor4D,
        stride,
        (kernel - 1) / 2,
      );
      const pooled = tf.mean(conv, [1, 2]) as tf.Tensor2D;
      return tf
        .matMul(pooled, model.params.get("fc.kernel") as tf.Variable as tf.Tensor2D)
        .add(model.params.get("fc.bias")!)
        .dataSync();
    });
    expect(relativeError(got, want)).toBeLessThan(1e-6);
    disposeModel(model);
    images.dispose();
  });

  it("refuses an even kernel, whose symmetric padding is not whole", () => {
    const model = createModel(oneConv(6, 6, 2, 1), 1);
    const images = tf.zeros([1, 6, 6, 2]) as tf.Tensor4D;
    expect(() => forward(model, images, { training: false })).toThrow(/layer c: kernel 2 is even/);
    disposeModel(model);
  });
});
