// A run interrupted and resumed ends in the same state as one left alone: weights, batch-norm
// statistics, optimizer slots, step, RNG state and per-epoch metrics, bit for bit; and its
// metrics.jsonl holds the same records, none missing, none twice, also after a crash.
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadDataset } from "../../../training/data/index.ts";
import { type PreparedData, prepareData } from "../../../training/data/prepare.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { startTrainingEngine } from "../../../training/engine/index.ts";
import type { GradientFn } from "../../../training/engine/step.ts";
import { type Checkpoint, loadCheckpoint } from "../../../training/train/checkpoint.ts";
import { type TrainSpec, checkpointPath, train } from "../../../training/train/loop.ts";
import { MetricsLog, type MetricsRecord, readMetrics } from "../../../training/train/metrics-log.ts";
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

/** Trains `s` in a run directory of its own, stopping after each of `stops` steps and resuming; `crash` runs between. */
async function interrupted(
  s: TrainSpec,
  stops: number[],
  teacher?: Teacher,
  gradients?: GradientFn,
  crash?: (metrics: MetricsLog, stop: number) => void,
): Promise<Checkpoint & { records: MetricsRecord[] }> {
  const runDir = mkdtempSync(join(tmpdir(), "nd-resume-"));
  const dir = join(runDir, s.name);
  const metrics = new MetricsLog(runDir);
  for (const [i, after] of [...stops, Infinity].entries()) {
    let steps = 0;
    const r = await train(s, {
      dir,
      data,
      engine,
      log,
      teacher,
      gradients,
      checkpointMinutes: 0,
      shouldStop: () => ++steps >= after,
      metrics,
      metricsEvery: 2,
    });
    expect(r.finished).toBe(after === Infinity);
    if (after !== Infinity) crash?.(metrics, i);
  }
  return { ...loadCheckpoint(checkpointPath(dir)), records: readMetrics(metrics.path) };
}

/** The records without what differs between two runs of one configuration (wall clock). */
const sameRecords = (c: { records: MetricsRecord[] }) => c.records.map(({ time: _t, imagesPerSecond: _i, ...r }) => r);

describe("resume", () => {
  it("ends where an uninterrupted run ends, after stops mid-epoch and at an epoch boundary", async () => {
    const alone = await interrupted(spec(), []);
    expect(alone.meta.done).toBe(true);
    expect(alone.meta.step).toBe(12); // 2 epochs x floor(100 / 16)
    // 3 steps into epoch 1; then 3 more steps (the end of epoch 1, a boundary); then 2 into epoch 2.
    const resumed = await interrupted(spec(), [3, 3, 2]);
    expect(comparable(resumed)).toEqual(comparable(alone));
    // Steps 2, 4, ..., 12 and the two epochs (6 steps each), in order, once each.
    expect(alone.records.map((r) => `${r.kind}:${r.epoch}:${r.step}`)).toEqual([
      "step:1:2",
      "step:1:4",
      "step:1:6",
      "epoch:1:6",
      "step:2:8",
      "step:2:10",
      "step:2:12",
      "epoch:2:12",
    ]);
    expect(alone.records.find((r) => r.kind === "epoch" && r.epoch === 2)).toMatchObject({
      subRun: "s",
      valAccuracy: alone.meta.history[1]!.valAccuracy,
      testAccuracy: alone.meta.history[1]!.testAccuracy,
    });
    expect(sameRecords(resumed)).toEqual(sameRecords(alone));
  });

  it("continues metrics.jsonl without gaps or duplicates after crashes: lines past the checkpoint, torn lines, a lost file", async () => {
    const alone = await interrupted(spec(), []);
    const resumed = await interrupted(spec(), [3, 3, 2], undefined, undefined, (metrics, i) => {
      if (i === 0) {
        // Killed after logging steps the checkpoint does not hold, in the middle of a line.
        metrics.append({
          subRun: "s",
          kind: "step",
          epoch: 1,
          step: 4,
          loss: 9,
          trainAccuracy: 0,
          learningRate: 0,
          imagesPerSecond: 0,
        });
        appendFileSync(metrics.path, '{"subRun":"s","kind":"st');
      }
      if (i === 1) rmSync(metrics.path); // lost: the epoch records come back from the checkpoint
    });
    const expected = sameRecords(alone).filter((r) => r.kind === "epoch" || r.step > 6);
    expect(sameRecords(resumed)).toEqual(expected);
    expect(comparable(resumed)).toEqual(comparable(alone));
  });

  it("does so with a KD loss and the ONNX teacher working a batch ahead", async () => {
    const tdir = mkdtempSync(join(tmpdir(), "nd-teacher-"));
    await train(spec({ name: "t", role: "teacher", architecture: "teacher", epochs: 1, widthScale: 0.125 }), {
      dir: tdir,
      data,
      engine,
      log,
      checkpointMinutes: 0,
    });
    const probe = makeBatch(data.test, [0, 1, 2, 3], normalizationTable(data.normalization), null, new Rng(0));
    const teacher = await loadTeacher(loadCheckpoint(checkpointPath(tdir)), "onnx", probe, log);
    try {
      const kd = spec({ loss: { name: "kd", options: { temperature: 4, alpha: 0.9 } } });
      const alone = await interrupted(kd, [], teacher);
      const resumed = await interrupted(kd, [5], teacher);
      expect(comparable(resumed)).toEqual(comparable(alone));
      expect(sameRecords(resumed)).toEqual(sameRecords(alone));
      // KD's parts: loss = (1 - alpha) * cross-entropy + the distillation part.
      for (const r of alone.records) expect(r.loss).toBeCloseTo(0.1 * r.crossEntropy! + r.distillation!, 10);
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
    await expect(train(spec({ batchSize: 8 }), { dir, data, engine, log, checkpointMinutes: 0 })).rejects.toThrow(
      /different configuration or data \(batchSize: 16 vs 8\)/,
    );
  });
});
