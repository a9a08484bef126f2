// Data-parallel training over worker threads equals single-process training at the same batch:
// same loss, correct count, gradients (1e-5 relative) and batch-norm moving statistics.
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../../../training/engine/backend.ts";
import { DataParallel } from "../../../training/engine/data-parallel.ts";
import { splitSizes } from "../../../training/engine/replica-step.ts";
import { createLoss } from "../../../training/losses/index.ts";
import { type Model, createModel, disposeModel } from "../../../training/model/forward.ts";
import { paramSpecs } from "../../../training/model/graph.ts";
import { architecture } from "../../../training/model/resnet.ts";
import { type Gradients, lossAndGradients } from "../../../training/engine/step.ts";
import { randomValues, relativeError } from "./gradcheck.ts";

const input = { height: 10, width: 10, channels: 3 };
const graph = architecture("unmodified", input, 5, 0.25);

function batchOf(size: number, seed: number) {
  return {
    size,
    images: randomValues(size * 10 * 10 * 3, seed),
    labels: Int32Array.from({ length: size }, (_, i) => (i * 3 + seed) % 5),
  };
}

/** Runs `f` on a fresh model, returning the gradients and every parameter after the step. */
function run(f: () => Gradients, model: Model): { g: Gradients; params: Map<string, Float32Array> } {
  const g = f();
  const params = new Map([...model.params].map(([k, v]) => [k, v.dataSync() as Float32Array]));
  return { g, params };
}

function expectSame(a: ReturnType<typeof run>, b: ReturnType<typeof run>): void {
  expect(b.g.loss).toBeCloseTo(a.g.loss, 5);
  expect(b.g.correct).toBe(a.g.correct);
  for (const [name, grad] of a.g.grads)
    expect(relativeError(b.g.grads.get(name)!.dataSync(), grad.dataSync()), name).toBeLessThan(1e-5);
  for (const [name, value] of a.params) expect(relativeError(b.params.get(name)!, value), name).toBeLessThan(1e-5);
}

describe("DataParallel", () => {
  let pool: DataParallel;
  beforeAll(async () => {
    await initBackend("wasm", { log: () => {} });
    pool = await DataParallel.start({ replicas: 2 });
  });
  afterAll(async () => {
    await pool?.close();
  });

  it("splits a batch with the remainder first", () => {
    expect(splitSizes(7, 2)).toEqual([4, 3]);
    expect(splitSizes(64, 3)).toEqual([22, 21, 21]);
  });

  it.each([
    ["ce", {}, 8],
    ["kd", { temperature: 4, alpha: 0.9 }, 7], // uneven shares, teacher logits split too
  ] as const)("equals single-process training (%s loss %j, batch %i)", (lossName, options, size) => {
    const loss = createLoss(lossName, options);
    const batch = batchOf(size, 3);
    const teacher = loss.needsTeacher ? randomValues(size * 5, 9).map((v) => v * 4) : null;
    const single = createModel(graph, 5);
    const parallel = createModel(graph, 5);
    const a = run(() => lossAndGradients(single, batch, loss, teacher), single);
    const b = run(() => pool.gradients(parallel, batch, loss, teacher), parallel);
    expectSame(a, b);
    // The moving statistics really moved (training-mode forward ran on the whole batch).
    const mean = paramSpecs(graph).find((s) => s.name.endsWith("movingMean"))!.name;
    expect(Array.from(b.params.get(mean)!).some((v) => v !== 0)).toBe(true);
    for (const m of [single, parallel]) disposeModel(m);
    for (const g of [a.g, b.g])
      g.grads.forEach((t) => {
        t.dispose();
      });
  });

  it("follows a new model and batch size, and falls back to one thread for a batch smaller than the pool", () => {
    const other = architecture("narrow-deep", input, 5, 0.2);
    const loss = createLoss("ce");
    for (const [g, size] of [
      [other, 12],
      [graph, 16],
      [graph, 1],
    ] as const) {
      const single = createModel(g, 2);
      const parallel = createModel(g, 2);
      const batch = batchOf(size, size);
      expectSame(
        run(() => lossAndGradients(single, batch, loss, null), single),
        run(() => pool.gradients(parallel, batch, loss, null), parallel),
      );
      disposeModel(single);
      disposeModel(parallel);
    }
    expect(tf.getBackend()).toBe("wasm");
  });

  it("reports a replica's error instead of hanging, and refuses work afterwards", async () => {
    const broken = await DataParallel.start({ replicas: 2 });
    try {
      const model = createModel(graph, 1);
      // The worker builds its loss by registry name: an unknown name fails there only.
      const loss = { ...createLoss("ce"), name: "no-such-loss" };
      expect(() => broken.gradients(model, batchOf(4, 1), loss, null)).toThrow(
        /replica 1: .*unknown loss "no-such-loss"/,
      );
      expect(() => broken.gradients(model, batchOf(4, 1), createLoss("ce"), null)).toThrow(/failed earlier/);
      disposeModel(model);
    } finally {
      await broken.close();
    }
  });

  it("describes itself", () => {
    expect(pool.describe("CPU (WebAssembly, 1 thread, SIMD)")).toBe(
      "2 data-parallel replicas (threads), each CPU (WebAssembly, 1 thread, SIMD)",
    );
  });
});
