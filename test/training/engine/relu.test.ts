// The one-pass ReLU gradient on wasm against tfjs' own on cpu: SIMD groups and the scalar tail.
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { RELU_GRAD } from "../../../training/engine/relu.ts";
import { onBothBackends, randomValues, useBackend } from "./gradcheck.ts";

describe("ReLU gradient on wasm", () => {
  it.each([[1], [3], [4], [7], [64], [1001]])("equals cpu's exactly for %i values, zeros included", async (n) => {
    const { cpu, wasm } = await onBothBackends(() => {
      const values = randomValues(n, 9);
      for (let i = 0; i < n; i += 5) values[i] = 0; // relu'(0) = 0 in tfjs
      const x = tf.tensor1d(values);
      const dy = tf.tensor1d(randomValues(n, 10));
      return [tf.grad((a: tf.Tensor) => tf.relu(a).mul(dy).sum())(x)];
    });
    const plusZero = (a: Float32Array) => Array.from(a, (v) => v + 0); // cpu's dy * 0 can be -0
    expect(plusZero(wasm[0]!)).toEqual(plusZero(cpu[0]!));
  });

  it("runs as one kernel on wasm", async () => {
    await useBackend("wasm");
    const x = tf.tensor1d(randomValues(100, 11));
    const { kernelNames } = await tf.profile(() => tf.grad((a: tf.Tensor) => tf.relu(a).sum())(x));
    expect(kernelNames).toContain(RELU_GRAD);
    expect(kernelNames).not.toContain("Step");
  });
});
