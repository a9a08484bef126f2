// Accuracy and cross-entropy of a model on a whole image set, in inference mode (moving statistics).
import * as tf from "@tensorflow/tfjs";
import { makeBatch } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { Rng } from "../data/rng.ts";
import { crossEntropy } from "../losses/ce.ts";
import { type Model, forward } from "../model/forward.ts";

export interface Evaluation {
  accuracy: number;
  loss: number;
  samples: number;
}

export function evaluate(model: Model, set: ImageSet, table: Float32Array[], batchSize: number): Evaluation {
  const { height, width, channels } = model.graph.input;
  const unused = new Rng(0); // no augmentation: makeBatch draws nothing
  let correct = 0;
  let lossSum = 0;
  for (let start = 0; start < set.count; start += batchSize) {
    const n = Math.min(batchSize, set.count - start);
    const batch = makeBatch(set, Array.from({ length: n }, (_, i) => start + i), table, null, unused);
    const [c, l] = tf.tidy(() => {
      const logits = forward(model, tf.tensor4d(batch.images, [n, height, width, channels]), { training: false });
      const labels = tf.tensor1d(batch.labels, "int32");
      return [tf.sum(tf.equal(tf.argMax(logits, 1), labels).asType("int32")).dataSync()[0]!, crossEntropy(logits, labels).dataSync()[0]! * n];
    });
    correct += c;
    lossSum += l;
  }
  return { accuracy: set.count ? correct / set.count : 0, loss: set.count ? lossSum / set.count : 0, samples: set.count };
}
