// Multi-label losses: sigmoid cross-entropy and multi-label KD against hand-computed values and a
// double-precision reference; both refuse single-label input.
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { createLoss } from "../../../training/losses/index.ts";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const run = (
  name: string,
  opts: Record<string, unknown>,
  logits: number[][],
  targets: number[][],
  teacher?: number[][],
) =>
  tf.tidy(
    () =>
      createLoss(name, opts)
        .compute({
          logits: tf.tensor2d(logits),
          labels: tf.tensor1d(
            logits.map(() => 0),
            "int32",
          ),
          targets: tf.tensor2d(targets),
          teacherLogits: teacher ? tf.tensor2d(teacher) : undefined,
        })
        .dataSync()[0]!,
  );

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
// -[y log s + (1 - y) log(1 - s)] with s = sigmoid(z), in a form without log(0) for large |z|.
const bce = (z: number, y: number) => Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - y * z;
const binaryKl = (p: number, q: number) => p * Math.log(p / q) + (1 - p) * Math.log((1 - p) / (1 - q));
const mean = (rows: number[][]) => rows.flat().reduce((a, b) => a + b, 0) / rows.flat().length;

describe("multi-label losses", () => {
  it("bce: the mean over images and classes of each class's binary cross-entropy", () => {
    // z = 0: ln 2 whatever the target; z = ln 3 (sigmoid 3/4) with target 1: ln(4/3); target 0: ln 4.
    expect(run("bce", {}, [[0, Math.log(3), Math.log(3)]], [[1, 1, 0]])).toBeCloseTo(
      (Math.log(2) + Math.log(4 / 3) + Math.log(4)) / 3,
      5,
    );
    const logits = [
      [3, -2, 0.5],
      [-40, 40, 1],
    ];
    const targets = [
      [1, 0, 1],
      [0, 1, 0],
    ];
    expect(run("bce", {}, logits, targets)).toBeCloseTo(
      mean(logits.map((r, i) => r.map((z, k) => bce(z, targets[i]![k]!)))),
      5,
    );
  });

  it("mlkd: alpha T^2 times the mean binary KL of the sigmoids at T, plus (1 - alpha) bce", () => {
    // T = 1, student 0 (1/2), teacher ln 3 (3/4): KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.1308120; bce
    // with target 1 = ln 2. 0.9 * 0.1308120 + 0.1 * 0.6931472 = 0.1870455.
    expect(run("mlkd", { temperature: 1 }, [[0]], [[1]], [[Math.log(3)]])).toBeCloseTo(0.1870455, 5);
    const logits = [
      [3, -2, 0.5],
      [-4, 4, 1],
    ];
    const teacher = [
      [1, -1, 2],
      [0, 3, -3],
    ];
    const targets = [
      [1, 0, 1],
      [0, 1, 0],
    ];
    for (const [t, alpha] of [
      [4, 0.9],
      [2, 0.5],
    ] as const) {
      const soft = mean(logits.map((r, i) => r.map((z, k) => binaryKl(sigmoid(teacher[i]![k]! / t), sigmoid(z / t)))));
      const hard = mean(logits.map((r, i) => r.map((z, k) => bce(z, targets[i]![k]!))));
      expect(run("mlkd", { temperature: t, alpha }, logits, targets, teacher)).toBeCloseTo(
        alpha * t * t * soft + (1 - alpha) * hard,
        5,
      );
    }
    // A teacher equal to the student leaves (1 - alpha) bce.
    expect(run("mlkd", { alpha: 0.5 }, logits, targets, logits)).toBeCloseTo(0.5 * run("bce", {}, logits, targets), 5);
  });

  it("are the multi-label losses and need targets", () => {
    expect(createLoss("bce", {}).multiLabel).toBe(true);
    expect(createLoss("mlkd", { alpha: 0 }).needsTeacher).toBe(false);
    expect(createLoss("kd", {}).multiLabel).toBeUndefined();
    expect(() =>
      tf.tidy(() => createLoss("bce", {}).compute({ logits: tf.tensor2d([[0]]), labels: tf.tensor1d([0], "int32") })),
    ).toThrow(/bce loss is for multi-label data/);
  });
});
