// What the training loop reports about time is wall-clock truth: a teacher whose work runs on the
// event loop (as onnxruntime-node's session.run does, in a setImmediate callback) is counted in
// the epoch's seconds and images per second.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadDataset } from "../../../training/data/index.ts";
import { type PreparedData, prepareData } from "../../../training/data/prepare.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { loadCheckpoint } from "../../../training/train/checkpoint.ts";
import { type TrainSpec, checkpointPath, train } from "../../../training/train/loop.ts";
import { type Teacher, loadTeacher } from "../../../training/train/teacher.ts";
import { createModel, disposeModel } from "../../../training/model/forward.ts";
import { architecture } from "../../../training/model/resnet.ts";
import type { Checkpoint } from "../../../training/train/checkpoint.ts";
import { makeBatch, normalizationTable } from "../../../training/data/batches.ts";
import { Rng } from "../../../training/data/rng.ts";
import { writeLearnableFashionMnist } from "../data/fixtures.ts";

let data: PreparedData;
let engine: { backend: string; device: string };

beforeAll(async () => {
  engine = await initBackend("wasm", { log: () => {} });
  const dir = mkdtempSync(join(tmpdir(), "nd-loop-data-"));
  writeLearnableFashionMnist(dir, { train: 100, test: 20 });
  data = prepareData(loadDataset("fashion-mnist", dir), { trainLimit: 0, valSize: 20, testLimit: 0, seed: 3 });
});

const spec: TrainSpec = {
  name: "s",
  role: "student",
  architecture: "wide",
  widthScale: 0.25,
  loss: { name: "kd", options: { temperature: 4, alpha: 0.9 } },
  epochs: 1,
  batchSize: 16,
  evalBatchSize: 64,
  schedule: { kind: "cosine", learningRate: 0.05, milestones: [], gamma: 0.1, warmupEpochs: 0 },
  sgd: { momentum: 0.9, weightDecay: 5e-4, nesterov: true },
  augmentation: null,
  seed: 1,
};

/** A real teacher whose every run also keeps the thread busy for `ms` inside a setImmediate callback. */
function onTheEventLoop(teacher: Teacher, ms: number): Teacher {
  return {
    ...teacher,
    logits: (batch) =>
      new Promise((resolve, reject) =>
        setImmediate(() => {
          const until = performance.now() + ms;
          while (performance.now() < until);
          teacher.logits(batch).then(resolve, reject);
        }),
      ),
  };
}

describe("training loop timing", () => {
  it("counts the teacher's time on the event loop in the epoch's wall-clock seconds", async () => {
    const graph = architecture(
      "teacher",
      { height: data.train.height, width: data.train.width, channels: data.train.channels },
      10,
      0.125,
    );
    const init = createModel(graph, 5);
    const weights = new Map(
      [...init.params].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]),
    );
    disposeModel(init);
    const ckpt = { graph, weights, optimizer: new Map(), meta: {} } as unknown as Checkpoint;
    const probe = makeBatch(data.test, [0, 1], normalizationTable(data.normalization), null, new Rng(0));
    const teacher = onTheEventLoop(await loadTeacher(ckpt, "tfjs", probe, () => {}), 60);
    const dir = mkdtempSync(join(tmpdir(), "nd-loop-"));
    const started = performance.now();
    await train(spec, { dir, data, engine, log: () => {}, teacher, checkpointMinutes: 0 });
    const elapsed = (performance.now() - started) / 1000;
    const [epoch] = loadCheckpoint(checkpointPath(dir)).meta.history;
    const steps = Math.floor(data.train.count / spec.batchSize); // 5 steps, 5 teacher runs of 60 ms
    expect(epoch!.seconds).toBeGreaterThanOrEqual(steps * 0.06);
    expect(epoch!.seconds).toBeLessThanOrEqual(elapsed);
    expect(epoch!.imagesPerSecond).toBeLessThanOrEqual((steps * spec.batchSize) / (steps * 0.06));
    await teacher.dispose();
  });
});
