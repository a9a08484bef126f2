// Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network":
//   alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)
// T^2 keeps the soft term's gradients at the scale of the hard term's as T changes.
// alpha = 0 is plain cross-entropy: the baseline each student is also trained with.
import * as tf from "@tensorflow/tfjs";
import { crossEntropy } from "./ce.ts";
import { type LossFactory, numericOptions } from "./loss.ts";

/** Batch-mean KL(softmax(teacher / T) || softmax(student / T)). */
export function softTargetKl(logits: tf.Tensor2D, teacherLogits: tf.Tensor2D, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(teacherLogits.div(temperature));
    const logQ = tf.logSoftmax(logits.div(temperature));
    return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ))).div(logits.shape[0]) as tf.Scalar;
  });
}

export const kd: LossFactory = (given) => {
  const { temperature, alpha } = numericOptions("kd", given, {
    temperature: { default: 4, check: (v) => v > 0, expect: "a number > 0" },
    alpha: { default: 0.9, check: (v) => v >= 0 && v <= 1, expect: "a number from 0 to 1" },
  });
  return {
    name: "kd",
    options: { temperature, alpha },
    needsTeacher: alpha > 0,
    compute: ({ logits, labels, teacherLogits }) =>
      tf.tidy(() => {
        const hard = crossEntropy(logits, labels);
        if (alpha === 0) return hard;
        if (!teacherLogits) throw new Error("the kd loss needs the teacher's logits");
        const soft = softTargetKl(logits, teacherLogits, temperature);
        return soft.mul(alpha * temperature * temperature).add(hard.mul(1 - alpha)) as tf.Scalar;
      }),
  };
};
