// The two figures every training step and evaluation reports beside its loss, for single-label data
// (class indices) and multi-label data (multi-hot targets) alike:
//   the loss with the labels alone: cross-entropy, or sigmoid cross-entropy for multi-label data;
//   the images whose top-scoring class is right: the label, or one of the classes present.
import * as tf from "@tensorflow/tfjs";
import { sigmoidCrossEntropy } from "./bce.ts";
import { crossEntropy } from "./ce.ts";

/** Batch mean of the labels-only loss. */
export function labelLoss(logits: tf.Tensor2D, labels: tf.Tensor1D, targets?: tf.Tensor2D): tf.Scalar {
  return targets ? sigmoidCrossEntropy(logits, targets) : crossEntropy(logits, labels);
}

/** How many images of the batch have a right top-1 class (int32 scalar). */
export function topOneCorrect(logits: tf.Tensor2D, labels: tf.Tensor1D, targets?: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const top = tf.argMax(logits, 1);
    if (!targets) return tf.sum(tf.equal(top, labels).asType("int32")) as tf.Scalar;
    return tf.sum(tf.mul(tf.oneHot(top, logits.shape[1]), targets)).asType("int32") as tf.Scalar;
  });
}
