import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { createLoss } from "../../../training/losses/index.ts";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const run = (name: string, opts: Record<string, unknown>, logits: number[][], labels: number[], teacher?: number[][]) =>
  tf.tidy(
    () =>
      createLoss(name, opts)
        .compute({
          logits: tf.tensor2d(logits),
          labels: tf.tensor1d(labels, "int32"),
          teacherLogits: teacher ? tf.tensor2d(teacher) : undefined,
        })
        .dataSync()[0]!,
  );

// Plain double-precision reference, written out from the formula.
function softmax(z: number[], t: number): number[] {
  const m = Math.max(...z.map((v) => v / t));
  const e = z.map((v) => Math.exp(v / t - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
function reference(logits: number[][], labels: number[], teacher: number[][], t: number, alpha: number): number {
  let total = 0;
  logits.forEach((z, i) => {
    const q = softmax(z, t);
    const p = softmax(teacher[i]!, t);
    const kl = p.reduce((s, pi, k) => s + pi * Math.log(pi / q[k]!), 0);
    const ce = -Math.log(softmax(z, 1)[labels[i]!]!);
    total += alpha * t * t * kl + (1 - alpha) * ce;
  });
  return total / logits.length;
}

describe("losses", () => {
  it("KD matches a value worked out by hand", () => {
    // T = 4: teacher logits [4 ln 3, 0] give soft targets [3/4, 1/4]; student logits [0, 0] give [1/2, 1/2].
    // KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.1308120; T^2 KL = 2.0929925; CE(label 0) = ln 2 = 0.6931472.
    // 0.9 * 2.0929925 + 0.1 * 0.6931472 = 1.9530080
    expect(run("kd", {}, [[0, 0]], [0], [[4 * Math.log(3), 0]])).toBeCloseTo(1.953008, 5);
    // Teacher equal to student: the KL term vanishes, only (1 - alpha) CE is left.
    expect(run("kd", { alpha: 0.5, temperature: 2 }, [[1, 2, 3]], [2], [[1, 2, 3]])).toBeCloseTo(
      0.5 * -Math.log(softmax([1, 2, 3], 1)[2]!),
      5,
    );
  });

  it("KD matches the double-precision formula on random batches", () => {
    const rnd = (n: number, m: number, s: number) =>
      Array.from({ length: n }, (_, i) => Array.from({ length: m }, (_, j) => Math.sin(i * 7.1 + j * 3.3 + s) * 5));
    const logits = rnd(6, 10, 0);
    const teacher = rnd(6, 10, 1);
    const labels = [0, 3, 9, 4, 4, 1];
    for (const [t, alpha] of [
      [4, 0.9],
      [1, 0.5],
      [8, 1],
    ] as const) {
      expect(run("kd", { temperature: t, alpha }, logits, labels, teacher)).toBeCloseTo(
        reference(logits, labels, teacher, t, alpha),
        4,
      );
    }
  });

  it("alpha = 0 is cross-entropy and needs no teacher", () => {
    const logits = [
      [2, -1, 0.5],
      [0, 0, 0],
    ];
    expect(createLoss("kd", { alpha: 0 }).needsTeacher).toBe(false);
    expect(createLoss("kd").needsTeacher).toBe(true);
    const ce = run("ce", {}, logits, [0, 2]);
    expect(run("kd", { alpha: 0 }, logits, [0, 2])).toBeCloseTo(ce, 6);
    expect(ce).toBeCloseTo((-Math.log(softmax([2, -1, 0.5], 1)[0]!) + Math.log(3)) / 2, 5);
  });

  it("has the KD gradient alpha T (q - p) / B + (1 - alpha) (softmax - onehot) / B", () => {
    const z = [[1, -2, 0.5]];
    const teacher = [[3, 0, -1]];
    const [t, alpha] = [4, 0.9];
    const g = tf.tidy(() => {
      const loss = createLoss("kd", { temperature: t, alpha });
      const labels = tf.tensor1d([1], "int32");
      const tl = tf.tensor2d(teacher);
      return tf
        .grad((x: tf.Tensor) => loss.compute({ logits: x as tf.Tensor2D, labels, teacherLogits: tl }))(tf.tensor2d(z))
        .arraySync() as number[][];
    });
    const q = softmax(z[0]!, t);
    const p = softmax(teacher[0]!, t);
    const s = softmax(z[0]!, 1);
    const expected = q.map((qk, k) => alpha * t * (qk - p[k]!) + (1 - alpha) * (s[k]! - (k === 1 ? 1 : 0)));
    g[0]!.forEach((v, k) => {
      expect(v).toBeCloseTo(expected[k]!, 5);
    });
  });

  it("rejects unknown losses, unknown options and out-of-range values", () => {
    expect(() => createLoss("fitnets")).toThrow(/unknown loss "fitnets" \(known: ce, kd, dkd, at, bce, mlkd\)/);
    expect(() => createLoss("kd", { temprature: 4 })).toThrow(
      /loss "kd" has no option "temprature" \(options: temperature, alpha\)/,
    );
    expect(() => createLoss("kd", { alpha: 1.5 })).toThrow(/option alpha must be a number from 0 to 1, got 1.5/);
    expect(() => createLoss("kd", { temperature: 0 })).toThrow(/option temperature must be a number > 0/);
    expect(() => run("kd", {}, [[0, 0]], [0])).toThrow(/needs the teacher's logits/);
  });
});
