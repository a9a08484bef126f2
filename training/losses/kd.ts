// Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network":
//   alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)
// T^2 keeps the soft term's gradients at the scale of the hard term's as T changes.
// alpha = 0 is plain cross-entropy: the baseline each student is also trained with.
import * as tf from "@tensorflow/tfjs";
import { crossEntropy } from "./ce.ts";
import { type LossFactory, type LossInputs, numericOptions } from "./loss.ts";

/** Batch-mean KL(softmax(teacher / T) || softmax(student / T)). */
export function softTargetKl(logits: tf.Tensor2D, teacherLogits: tf.Tensor2D, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(teacherLogits.div(temperature));
    const logQ = tf.logSoftmax(logits.div(temperature));
    return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ))).div(logits.shape[0]) as tf.Scalar;
  });
}

/** KD's options: the temperature T and the weight alpha of the soft term. */
const KD_OPTIONS = {
  temperature: { default: 4, check: (v: number) => v > 0, expect: "a number > 0" },
  alpha: { default: 0.9, check: (v: number) => v >= 0 && v <= 1, expect: "a number from 0 to 1" },
};

/**
 * Hinton's combination, alpha * T^2 * soft + (1 - alpha) * hard, for a soft term between the
 * teacher's and the student's outputs at temperature T and a hard term with the labels (kd here;
 * mlkd.ts gives the multi-label pair).
 */
export function softTargetLoss(
  name: string,
  terms: {
    hard: (inputs: LossInputs) => tf.Scalar;
    soft: (logits: tf.Tensor2D, teacherLogits: tf.Tensor2D, temperature: number) => tf.Scalar;
    multiLabel?: true;
  },
): LossFactory {
  return (given) => {
    const { temperature, alpha } = numericOptions(name, given, KD_OPTIONS);
    return {
      name,
      options: { temperature, alpha },
      needsTeacher: alpha > 0,
      labelWeight: 1 - alpha,
      ...(terms.multiLabel ? { multiLabel: true } : {}),
      compute: (inputs) =>
        tf.tidy(() => {
          const hard = terms.hard(inputs);
          if (alpha === 0) return hard;
          if (!inputs.teacherLogits) throw new Error(`the ${name} loss needs the teacher's logits`);
          const soft = terms.soft(inputs.logits, inputs.teacherLogits, temperature);
          return soft.mul(alpha * temperature * temperature).add(hard.mul(1 - alpha)) as tf.Scalar;
        }),
    };
  };
}

export const kd = softTargetLoss("kd", {
  hard: ({ logits, labels }) => crossEntropy(logits, labels),
  soft: softTargetKl,
});
