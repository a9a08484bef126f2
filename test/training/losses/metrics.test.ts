// The labels-only loss and the top-1 count of training steps and evaluation, single- and multi-label.
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { labelLoss, topOneCorrect } from "../../../training/losses/metrics.ts";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

describe("step metrics", () => {
  const logits = [
    [2, 0, 1],
    [0, 3, 1],
    [1, 0, 4],
  ];
  const value = (f: () => tf.Scalar) => tf.tidy(() => f().dataSync()[0]!);

  it("single-label: argmax equal to the label; cross-entropy", () => {
    expect(value(() => topOneCorrect(tf.tensor2d(logits), tf.tensor1d([0, 2, 2], "int32")))).toBe(2);
    expect(value(() => labelLoss(tf.tensor2d([[0, 0]]), tf.tensor1d([1], "int32")))).toBeCloseTo(Math.log(2), 6);
  });

  it("multi-label: the top class is one of the image's; sigmoid cross-entropy", () => {
    // Tops 0, 1, 2: present in images 1 and 3 only.
    const targets = tf.tensor2d([
      [1, 0, 1],
      [1, 0, 1],
      [0, 1, 1],
    ]);
    expect(value(() => topOneCorrect(tf.tensor2d(logits), tf.tensor1d([0, 0, 1], "int32"), targets))).toBe(2);
    expect(value(() => labelLoss(tf.tensor2d([[0, 0]]), tf.tensor1d([0], "int32"), tf.tensor2d([[1, 0]])))).toBeCloseTo(
      Math.log(2),
      6,
    );
  });
});
