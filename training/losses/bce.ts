// Sigmoid cross-entropy with multi-hot targets: training on multi-label data without a teacher (the
// baseline, and the teacher's own loss). Each class is its own yes/no question.
import * as tf from "@tensorflow/tfjs";
import { type LossFactory, numericOptions } from "./loss.ts";

/**
 * Mean over the batch and the classes of -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))], as
 * PyTorch's BCEWithLogitsLoss; written as softplus(z) - y z, which never takes the log of 0.
 */
export function sigmoidCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.sub(tf.softplus(logits), tf.mul(targets, logits))) as tf.Scalar);
}

export function requireTargets(loss: string, targets: tf.Tensor2D | undefined): tf.Tensor2D {
  if (!targets)
    throw new Error(
      `the ${loss} loss is for multi-label data: it needs multi-hot targets (a multi-label data set such as voc)`,
    );
  return targets;
}

export const bce: LossFactory = (given) => ({
  name: "bce",
  options: numericOptions("bce", given, {}),
  needsTeacher: false,
  multiLabel: true,
  compute: ({ logits, targets }) => sigmoidCrossEntropy(logits, requireTargets("bce", targets)),
});
