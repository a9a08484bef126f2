// Cross-entropy with the labels: training without a teacher.
import * as tf from "@tensorflow/tfjs";
import { type LossFactory, numericOptions } from "./loss.ts";

/** Mean over the batch of -log softmax(logits)[label]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.oneHot(labels, logits.shape[1]);
    return tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)))).div(logits.shape[0]) as tf.Scalar;
  });
}

export const ce: LossFactory = (given) => ({
  name: "ce",
  options: numericOptions("ce", given, {}),
  needsTeacher: false,
  compute: ({ logits, labels }) => crossEntropy(logits, labels),
});
