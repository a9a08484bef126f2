import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { Sgd } from "../../../training/engine/optimizer.ts";
import { learningRateAt } from "../../../training/train/schedule.ts";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const params = () =>
  new Map<string, tf.Variable>([
    ["k", tf.variable(tf.tensor2d([[1, -2]]))],
    ["b", tf.variable(tf.tensor1d([0.5]))],
  ]);
const grads = (k: number[], b: number) =>
  new Map<string, tf.Tensor>([
    ["k", tf.tensor2d([k])],
    ["b", tf.tensor1d([b])],
  ]);
const read = (p: Map<string, tf.Variable>, name: string) => [...p.get(name)!.dataSync()];

describe("SGD", () => {
  it("follows v = m v + g + wd w, w -= lr v, with weight decay on kernels only", () => {
    const p = params();
    const sgd = new Sgd(p, { momentum: 0.9, weightDecay: 0.1, nesterov: false });
    sgd.apply(grads([1, 1], 2), 0.5);
    // kernel: d = g + 0.1 w = [1.1, 0.8]; v = d; w = [1, -2] - 0.5 [1.1, 0.8] = [0.45, -2.4]
    // bias (no decay): v = 2; w = 0.5 - 1 = -0.5
    expect(read(p, "k")[0]).toBeCloseTo(0.45, 6);
    expect(read(p, "k")[1]).toBeCloseTo(-2.4, 6);
    expect(read(p, "b")[0]).toBeCloseTo(-0.5, 6);
    sgd.apply(grads([0, 0], 0), 0.5);
    // kernel: d = 0.1 w = [0.045, -0.24]; v = 0.9 [1.1, 0.8] + d = [1.035, 0.48]; w -= 0.5 v
    expect(read(p, "k")[0]).toBeCloseTo(0.45 - 0.5175, 6);
    expect(read(p, "k")[1]).toBeCloseTo(-2.4 - 0.24, 6);
    expect(read(p, "b")[0]).toBeCloseTo(-0.5 - 0.5 * 1.8, 6); // v = 0.9 * 2
  });

  it("applies the Nesterov form w -= lr (d + m v)", () => {
    const p = params();
    new Sgd(p, { momentum: 0.5, weightDecay: 0, nesterov: true }).apply(grads([2, 0], 0), 1);
    expect(read(p, "k")).toEqual([1 - (2 + 0.5 * 2), -2]);
  });

  it("saves and restores its momentum exactly", () => {
    const [p1, p2] = [params(), params()];
    const a = new Sgd(p1, { momentum: 0.9, weightDecay: 0, nesterov: false });
    a.apply(grads([1, 2], 3), 0.1);
    const b = new Sgd(p2, a.options);
    b.load(a.state());
    p2.get("k")!.assign(p1.get("k")!);
    p2.get("b")!.assign(p1.get("b")!);
    a.apply(grads([0.3, 0.1], 1), 0.1);
    b.apply(grads([0.3, 0.1], 1), 0.1);
    expect(read(p2, "k")).toEqual(read(p1, "k"));
    expect([...a.state().keys()].sort()).toEqual(["b:momentum", "k:momentum"]);
    expect(() => b.load(new Map([["w:momentum", { shape: [1], data: new Float32Array(1) }]]))).toThrow(
      /optimizer slot "w:momentum" does not belong/,
    );
  });
});

describe("learning-rate schedules", () => {
  const base = { learningRate: 0.1, milestones: [0.5, 0.75], gamma: 0.1, warmupEpochs: 0 };
  it("cosine decays from the peak to zero over the run", () => {
    const s = { ...base, kind: "cosine" as const };
    expect(learningRateAt(s, 0, 10, 4)).toBeCloseTo(0.1, 9);
    expect(learningRateAt(s, 20, 10, 4)).toBeCloseTo(0.05, 9);
    expect(learningRateAt(s, 40, 10, 4)).toBeCloseTo(0, 9);
  });
  it("step drops by gamma at each milestone fraction", () => {
    const s = { ...base, kind: "step" as const };
    expect([0, 19, 20, 29, 30, 39].map((step) => learningRateAt(s, step, 10, 4))).toEqual([
      0.1,
      0.1,
      0.1 * 0.1,
      0.1 * 0.1,
      0.1 * 0.1 ** 2,
      0.1 * 0.1 ** 2,
    ]);
  });
  it("warms up linearly", () => {
    const s = { ...base, kind: "step" as const, warmupEpochs: 1 };
    expect(learningRateAt(s, 0, 10, 4)).toBeCloseTo(0.01, 9);
    expect(learningRateAt(s, 4, 10, 4)).toBeCloseTo(0.05, 9);
    expect(learningRateAt(s, 10, 10, 4)).toBeCloseTo(0.1, 9);
  });
});
