// DKD against values worked out by hand, a double-precision reference, KD's own decomposition
// (KD = TCKD + (1 - p_target) NCKD, the identity the method is built on) and a finite-difference gradient.
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { decoupledKl } from "../../../training/losses/dkd.ts";
import { createLoss } from "../../../training/losses/index.ts";
import { softTargetKl } from "../../../training/losses/kd.ts";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const run = (opts: Record<string, unknown>, logits: number[][], labels: number[], teacher: number[][]) =>
  tf.tidy(
    () =>
      createLoss("dkd", opts)
        .compute({
          logits: tf.tensor2d(logits),
          labels: tf.tensor1d(labels, "int32"),
          teacherLogits: tf.tensor2d(teacher),
        })
        .dataSync()[0]!,
  );

function softmax(z: number[], t: number): number[] {
  const m = Math.max(...z.map((v) => v / t));
  const e = z.map((v) => Math.exp(v / t - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}
const kl = (p: number[], q: number[]) => p.reduce((s, pi, k) => s + (pi > 0 ? pi * Math.log(pi / q[k]!) : 0), 0);

/** DKD written out from the paper's definitions, in double precision. */
function reference(
  logits: number[][],
  labels: number[],
  teacher: number[][],
  t: number,
  alpha: number,
  beta: number,
): number {
  let total = 0;
  logits.forEach((z, i) => {
    const y = labels[i]!;
    const [q, p] = [softmax(z, t), softmax(teacher[i]!, t)];
    const tckd = kl([p[y]!, 1 - p[y]!], [q[y]!, 1 - q[y]!]);
    const others = (v: number[]) => {
      const rest = v.filter((_, k) => k !== y);
      const s = rest.reduce((a, b) => a + b, 0);
      return rest.map((r) => r / s);
    };
    const nckd = kl(others(p), others(q));
    total += -Math.log(softmax(z, 1)[y]!) + t * t * (alpha * tckd + beta * nckd);
  });
  return total / logits.length;
}

describe("DKD loss", () => {
  it("matches values worked out by hand", () => {
    // T = 1, label 0, student [0, 0, 0] (1/3 each), CE = ln 3 = 1.0986123.
    // Teacher [ln 2, 0, 0] -> [1/2, 1/4, 1/4]: TCKD = 1/2 ln(3/2) + 1/2 ln(3/4) = 0.0588915; the
    // other classes are 1/2, 1/2 for both, so NCKD = 0. Loss = 1.0986123 + 0.0588915 = 1.1575038.
    expect(run({ temperature: 1 }, [[0, 0, 0]], [0], [[Math.log(2), 0, 0]])).toBeCloseTo(1.1575038, 5);
    // Teacher [0, ln 3, 0] -> [1/5, 3/5, 1/5]: TCKD = 0.2 ln 0.6 + 0.8 ln 1.2 = 0.0436922; others
    // [3/4, 1/4] vs [1/2, 1/2]: NCKD = 3/4 ln 1.5 + 1/4 ln 0.5 = 0.1308120.
    // alpha 1, beta 8: 1.0986123 + 0.0436922 + 8 * 0.1308120 = 2.1888005.
    expect(run({ temperature: 1 }, [[0, 0, 0]], [0], [[0, Math.log(3), 0]])).toBeCloseTo(2.1888005, 5);
    // alpha and beta 0: cross-entropy alone, and no teacher needed.
    expect(createLoss("dkd", { alpha: 0, beta: 0 }).needsTeacher).toBe(false);
    expect(run({ alpha: 0, beta: 0 }, [[1, 2, 3]], [2], [[9, 0, 0]])).toBeCloseTo(
      -Math.log(softmax([1, 2, 3], 1)[2]!),
      5,
    );
  });

  it("matches the double-precision definition on random batches", () => {
    const rnd = (n: number, m: number, s: number) =>
      Array.from({ length: n }, (_, i) => Array.from({ length: m }, (_, j) => Math.sin(i * 7.1 + j * 3.3 + s) * 5));
    const [logits, teacher, labels] = [rnd(6, 10, 0), rnd(6, 10, 1), [0, 3, 9, 4, 4, 1]];
    for (const [t, alpha, beta] of [
      [4, 1, 8],
      [1, 0.5, 2],
      [8, 2, 0.5],
    ] as const) {
      expect(run({ temperature: t, alpha, beta }, logits, labels, teacher)).toBeCloseTo(
        reference(logits, labels, teacher, t, alpha, beta),
        4,
      );
    }
  });

  it("recombines into KD: KL = TCKD + (1 - p_target) NCKD, image by image", () => {
    const t = 4;
    for (const [z, teacher, y] of [
      [[1, -2, 0.5, 3], [2, 0, -1, 1], 2],
      [[0, 0, 0, 0], [5, -5, 1, 0], 0],
    ] as const) {
      const [kdValue, tckd, nckd] = tf.tidy(() => {
        const s = tf.tensor2d([[...z]]);
        const tt = tf.tensor2d([[...teacher]]);
        const parts = decoupledKl(s, tt, tf.tensor1d([y], "int32"), t);
        return [softTargetKl(s, tt, t).dataSync()[0]!, parts.tckd.dataSync()[0]!, parts.nckd.dataSync()[0]!];
      });
      const pTarget = softmax([...teacher], t)[y]!;
      expect(tckd + (1 - pTarget) * nckd).toBeCloseTo(kdValue, 5);
    }
  });

  it("has the gradient finite differences give, and finite values for confident logits", () => {
    const logits = [[2, -1, 0.5, 0.1]];
    const teacher = [[3, 0, -2, 1]];
    const f = (x: tf.Tensor2D) =>
      createLoss("dkd", {}).compute({
        logits: x,
        labels: tf.tensor1d([0], "int32"),
        teacherLogits: tf.tensor2d(teacher),
      });
    const analytic = tf.tidy(() =>
      tf
        .grad((x) => f(x as tf.Tensor2D))(tf.tensor2d(logits))
        .dataSync(),
    );
    const h = 1e-2;
    for (let k = 0; k < 4; k++) {
      const at = (d: number) =>
        tf.tidy(() => f(tf.tensor2d([logits[0]!.map((v, j) => (j === k ? v + d : v))])).dataSync()[0]!);
      expect(analytic[k]).toBeCloseTo((at(h) - at(-h)) / (2 * h), 2);
    }
    expect(Number.isFinite(run({}, [[60, -60, 0]], [0], [[-60, 60, 0]]))).toBe(true);
  });

  it("refuses unknown options and bad values", () => {
    expect(() => createLoss("dkd", { gamma: 1 })).toThrow(
      /loss "dkd" has no option "gamma" \(options: temperature, alpha, beta\)/,
    );
    expect(() => createLoss("dkd", { beta: -1 })).toThrow(/option beta must be a number >= 0/);
    expect(createLoss("dkd", {}).options).toEqual({ temperature: 4, alpha: 1, beta: 8 });
  });
});
