// A run interrupted and resumed ends in the same state as one left alone: weights, batch-norm
// statistics, optimizer slots, step, RNG state and per-epoch metrics, bit for bit.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadDataset } from "../../../training/data/index.ts";
import { type PreparedData, prepareData } from "../../../training/data/prepare.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { startTrainingEngine } from "../../../training/engine/index.ts";
import type { GradientFn } from "../../../training/train/step.ts";
import { type Checkpoint, loadCheckpoint } from "../../../training/train/checkpoint.ts";
import { type TrainSpec, checkpointPath, train } from "../../../training/train/loop.ts";
import { type Teacher, loadTeacher } from "../../../training/train/teacher.ts";
import { makeBatch, normalizationTable } from "../../../training/data/batches.ts";
import { Rng } from "../../../training/data/rng.ts";
import { writeLearnableFashionMnist } from "../data/fixtures.ts";
import { comparable } from "./compare.ts";

let data: PreparedData;
let engine: { backend: string; device: string };
const log = () => {};

beforeAll(async () => {
  engine = await initBackend("wasm", { log });
  const dir = mkdtempSync(join(tmpdir(), "nd-resume-data-"));
  writeLearnableFashionMnist(dir, { train: 120, test: 40 });
  data = prepareData(loadDataset("fashion-mnist", dir), { trainLimit: 0, valSize: 20, testLimit: 0, seed: 3 });
});

const spec = (over: Partial<TrainSpec> = {}): TrainSpec => ({
  name: "s",
  role: "student",
  architecture: "narrow-deep",
  widthScale: 0.2,
  loss: { name: "ce", options: {} },
  epochs: 2,
  batchSize: 16,
  evalBatchSize: 64,
  schedule: { kind: "step", learningRate: 0.05, milestones: [0.5], gamma: 0.1, warmupEpochs: 0.5 },
  sgd: { momentum: 0.9, weightDecay: 5e-4, nesterov: true },
  augmentation: { cropPadding: 1, flip: true },
  seed: 11,
  ...over,
});

async function interrupted(s: TrainSpec, stops: number[], teacher?: Teacher, gradients?: GradientFn): Promise<Checkpoint> {
  const dir = mkdtempSync(join(tmpdir(), "nd-resume-"));
  for (const after of [...stops, Infinity]) {
    let steps = 0;
    const r = await train(s, { dir, data, engine, log, teacher, gradients, checkpointMinutes: 0, shouldStop: () => ++steps >= after });
    expect(r.finished).toBe(after === Infinity);
  }
  return loadCheckpoint(checkpointPath(dir));
}

describe("resume", () => {
  it("ends where an uninterrupted run ends, after stops mid-epoch and at an epoch boundary", async () => {
    const alone = await interrupted(spec(), []);
    expect(alone.meta.done).toBe(true);
    expect(alone.meta.step).toBe(12); // 2 epochs x floor(100 / 16)
    // 3 steps into epoch 1; then 3 more steps (the end of epoch 1, a boundary); then 2 into epoch 2.
    const resumed = await interrupted(spec(), [3, 3, 2]);
    expect(comparable(resumed)).toEqual(comparable(alone));
  });

  it("does so with a KD loss and the ONNX teacher working a batch ahead", async () => {
    const tdir = mkdtempSync(join(tmpdir(), "nd-teacher-"));
    await train(spec({ name: "t", role: "teacher", architecture: "teacher", epochs: 1, widthScale: 0.125 }), { dir: tdir, data, engine, log, checkpointMinutes: 0 });
    const probe = makeBatch(data.test, [0, 1, 2, 3], normalizationTable(data.normalization), null, new Rng(0));
    const teacher = await loadTeacher(loadCheckpoint(checkpointPath(tdir)), "onnx", probe, log);
    try {
      const kd = spec({ loss: { name: "kd", options: { temperature: 4, alpha: 0.9 } } });
      const alone = await interrupted(kd, [], teacher);
      const resumed = await interrupted(kd, [5], teacher);
      expect(comparable(resumed)).toEqual(comparable(alone));
    } finally {
      await teacher.dispose();
    }
  });

  it("does so with data-parallel gradients on two threads", async () => {
    const parallel = await startTrainingEngine("wasm", { replicas: 2, log });
    try {
      const alone = await interrupted(spec(), [], undefined, parallel.gradients);
      const resumed = await interrupted(spec(), [4, 4], undefined, parallel.gradients);
      expect(comparable(resumed)).toEqual(comparable(alone));
    } finally {
      await parallel.close();
    }
  });

  it("refuses to resume a checkpoint trained with another configuration", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nd-resume-"));
    let steps = 0;
    await train(spec(), { dir, data, engine, log, checkpointMinutes: 0, shouldStop: () => ++steps >= 2 });
    await expect(train(spec({ batchSize: 8 }), { dir, data, engine, log, checkpointMinutes: 0 })).rejects.toThrow(/different configuration or data \(batchSize: 16 vs 8\)/);
  });
});
