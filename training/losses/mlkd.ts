// Knowledge distillation for multi-label data: each class is a yes/no question, so the soft target of
// class c is the teacher's sigmoid at temperature T, and the student matches it by binary KL:
//   alpha * T^2 * mean over images and classes of KL(Bern(sigmoid(t_c / T)) || Bern(sigmoid(s_c / T)))
//     + (1 - alpha) * sigmoid cross-entropy with the targets
// Both terms are means over images and classes, so alpha weighs terms of one scale, as in kd.ts.
import * as tf from "@tensorflow/tfjs";
import { requireTargets, sigmoidCrossEntropy } from "./bce.ts";
import { softTargetLoss } from "./kd.ts";

/** Mean over images and classes of the binary KL between the teacher's and the student's sigmoids at T. */
export function binarySoftTargetKl(logits: tf.Tensor2D, teacherLogits: tf.Tensor2D, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const s = logits.div(temperature);
    const t = teacherLogits.div(temperature);
    // log sigmoid(z) = -softplus(-z), log(1 - sigmoid(z)) = -softplus(z): finite for any z.
    const p = tf.sigmoid(t);
    const yes = tf.sub(tf.softplus(tf.neg(s)), tf.softplus(tf.neg(t)));
    const no = tf.sub(tf.softplus(s), tf.softplus(t));
    return tf.mean(tf.add(tf.mul(p, yes), tf.mul(tf.sub(1, p), no))) as tf.Scalar;
  });
}

export const mlkd = softTargetLoss("mlkd", {
  hard: ({ logits, targets }) => sigmoidCrossEntropy(logits, requireTargets("mlkd", targets)),
  soft: binarySoftTargetKl,
  multiLabel: true,
});
