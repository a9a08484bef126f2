// Accuracy and cross-entropy of a model on a whole image set, in inference mode (moving statistics).
// Multi-label sets: the top-1 accuracy counts an image whose top class is one of its classes, the
// loss is the sigmoid cross-entropy, and the mean average precision is measured too.
import * as tf from "@tensorflow/tfjs";
import { makeBatch } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { Rng } from "../data/rng.ts";
import { type Model, forward } from "../model/forward.ts";
import { meanAveragePrecision } from "./map.ts";
import { labelLoss, topOneCorrect } from "../losses/metrics.ts";

export interface Evaluation {
  accuracy: number;
  loss: number;
  samples: number;
  /** Multi-label sets: mean average precision over the classes present in the set. */
  map?: number;
}

export function evaluate(model: Model, set: ImageSet, table: Float32Array[], batchSize: number): Evaluation {
  const { height, width, channels } = model.graph.input;
  const classes = model.graph.numClasses;
  const unused = new Rng(0); // no augmentation: makeBatch draws nothing
  let correct = 0;
  let lossSum = 0;
  // Multi-label: every image's logits, for the ranking mAP needs.
  const scores = set.targets ? new Float32Array(set.count * classes) : undefined;
  for (let start = 0; start < set.count; start += batchSize) {
    const n = Math.min(batchSize, set.count - start);
    const batch = makeBatch(
      set,
      Array.from({ length: n }, (_, i) => start + i),
      table,
      null,
      unused,
    );
    const [c, l] = tf.tidy(() => {
      const logits = forward(model, tf.tensor4d(batch.images, [n, height, width, channels]), { training: false });
      const labels = tf.tensor1d(batch.labels, "int32");
      const targets = batch.targets ? tf.tensor2d(batch.targets, [n, classes]) : undefined;
      scores?.set(logits.dataSync(), start * classes);
      return [
        topOneCorrect(logits, labels, targets).dataSync()[0]!,
        labelLoss(logits, labels, targets).dataSync()[0]! * n,
      ];
    });
    correct += c;
    lossSum += l;
  }
  const map = scores ? meanAveragePrecision(scores, set.targets!, classes).map : undefined;
  return {
    accuracy: set.count ? correct / set.count : 0,
    loss: set.count ? lossSum / set.count : 0,
    samples: set.count,
    ...(map !== undefined ? { map } : {}),
  };
}
