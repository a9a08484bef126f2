// Checkpoints of small untrained models with realistic batch-norm statistics, for export tests.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { FASHION_MNIST_CLASSES } from "../../../training/data/fashion-mnist.ts";
import { architecture } from "../../../training/model/resnet.ts";
import { createModel, disposeModel, forward } from "../../../training/model/forward.ts";
import { type Checkpoint, type CheckpointMeta, saveCheckpoint } from "../../../training/train/checkpoint.ts";

export const FASHION_NORMALIZATION = { mean: [0.286], std: [0.353] };

export interface FixtureOptions {
  architecture: string;
  role?: "teacher" | "student";
  loss?: CheckpointMeta["loss"];
  widthScale?: number;
  seed?: number;
  done?: boolean;
  /** Sub-run name; default "teacher" or "<architecture>-kd". */
  name?: string;
  /** Test accuracy the training loop measured after the last epoch. */
  testAccuracy?: number;
}

/**
 * A checkpoint of a freshly initialized model whose batch-norm moving statistics have been run in on
 * random images (as training would), so its logits have the magnitudes of a real model's.
 */
export function fixtureCheckpoint(o: FixtureOptions): Checkpoint {
  const widthScale = o.widthScale ?? 0.25;
  const graph = architecture(o.architecture, { height: 28, width: 28, channels: 1 }, 10, widthScale);
  const model = createModel(graph, o.seed ?? 1);
  for (let i = 0; i < 40; i++)
    tf.tidy(() =>
      forward(model, tf.randomNormal([16, 28, 28, 1], 0, 1, "float32", i) as tf.Tensor4D, { training: true }),
    );
  const weights = new Map(
    [...model.params].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]),
  );
  disposeModel(model);
  const role = o.role ?? "student";
  const meta: CheckpointMeta = {
    name: o.name ?? (role === "teacher" ? "teacher" : `${o.architecture}-kd`),
    role,
    architecture: o.architecture,
    widthScale,
    loss:
      o.loss ??
      (role === "teacher" ? { name: "ce", options: {} } : { name: "kd", options: { temperature: 4, alpha: 0.9 } }),
    dataset: {
      name: "fashion-mnist",
      labels: FASHION_MNIST_CLASSES,
      normalization: FASHION_NORMALIZATION,
      trainSamples: 1000,
      valSamples: 0,
      testSamples: 10000,
    },
    epoch: 1,
    step: 10,
    done: o.done ?? true,
    rng: [1, 2, 3, 4],
    config: { preset: "test", epochs: 1, seed: o.seed ?? 1 },
    history:
      o.testAccuracy === undefined
        ? []
        : [
            {
              epoch: 1,
              trainLoss: 1,
              trainAccuracy: 0.5,
              testAccuracy: o.testAccuracy,
              testLoss: 1,
              learningRate: 0.1,
              imagesPerSecond: 100,
              seconds: 10,
            },
          ],
    engine: { backend: "cpu", device: "CPU" },
    wallSeconds: 1,
  };
  return { graph, weights, optimizer: new Map(), meta };
}

/** A run folder with one final checkpoint per sub-run (at width x0.125 unless given). */
export function fixtureRunDir(subRuns: FixtureOptions[]): string {
  const dir = mkdtempSync(join(tmpdir(), "run-"));
  for (const o of subRuns) {
    const ckpt = fixtureCheckpoint({ widthScale: 0.125, ...o });
    saveCheckpoint(join(dir, ckpt.meta.name, "last.ndckpt"), ckpt);
  }
  return dir;
}
