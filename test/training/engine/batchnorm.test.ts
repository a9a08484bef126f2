import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { batchNormTraining } from "../../../training/model/batch-norm-op.ts";
import { onBothBackends, randomValues, relativeError } from "./gradcheck.ts";

const EPS = 1e-5;

describe("fused batch norm (wasm kernel) against the composite ops on cpu", () => {
  it.each([
    [[4, 5, 5, 6]], // 6 channels: one group of four and a tail of two
    [[3, 4, 4, 16]],
    [[7, 3]], // rank 2 (a dense layer's output)
  ])("gives the same outputs and gradients for x %j", async (shape) => {
    const channels = shape.at(-1)!;
    const size = shape.reduce((a, b) => a * b, 1);
    const { cpu, wasm } = await onBothBackends(() => {
      // Inputs with an offset and scale so the statistics matter.
      const x = tf.tensor(randomValues(size, 11), shape).mul(3).add(1.5);
      const gamma = tf.tensor1d(randomValues(channels, 12)).add(1);
      const beta = tf.tensor1d(randomValues(channels, 13));
      const r = tf.tensor(randomValues(size, 14), shape);
      const rm = tf.tensor1d(randomValues(channels, 15));
      const rv = tf.tensor1d(randomValues(channels, 16));
      const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { y, mean, variance } = batchNormTraining(a, g, b, EPS);
        // Gradients also flow through the statistics, to test that path of the kernel.
        return y.mul(r).sum().add(mean.mul(rm).sum()).add(variance.mul(rv).sum());
      };
      const { y, mean, variance } = batchNormTraining(x, gamma, beta, EPS);
      const grads = tf.grads(f)([x, gamma, beta]);
      return [y, mean, variance, ...grads];
    });
    const names = ["y", "mean", "variance", "dx", "dgamma", "dbeta"];
    names.forEach((name, i) => {
      expect(relativeError(wasm[i]!, cpu[i]!), name).toBeLessThan(1e-5);
    });
  });

  it("reports the count behind the statistics", async () => {
    const { count } = batchNormTraining(tf.zeros([2, 3, 3, 4]), tf.ones([4]), tf.zeros([4]), EPS);
    expect(count).toBe(18);
  });
});
