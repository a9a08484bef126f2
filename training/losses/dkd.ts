// Decoupled knowledge distillation (Zhao, Cui, Song, Qiu, Liang 2022, "Decoupled Knowledge
// Distillation"; mdistiller's dkd_loss). KD's KL splits into two parts:
//   TCKD, target-class KD: KL between the binary distributions [p_target, 1 - p_target] of teacher
//         and student (how sure each is of the labelled class);
//   NCKD, non-target-class KD: KL between their distributions over the other classes alone, each
//         renormalized without the target class.
// KD = TCKD + (1 - p_target of the teacher) * NCKD, which couples NCKD's weight to how sure the
// teacher is; DKD weighs the two freely:
//   CE + alpha * T^2 * TCKD + beta * T^2 * NCKD      (batch means; mdistiller: alpha 1, beta 8, T 4)
// mdistiller also ramps the distillation terms in over the first 20 of 240 epochs; here the
// learning-rate warm-up of the recipe plays that part, since a loss sees no epoch.
import * as tf from "@tensorflow/tfjs";
import { crossEntropy } from "./ce.ts";
import { type LossFactory, numericOptions } from "./loss.ts";

/** What masks the target class out of a softmax, as mdistiller does: a large logit offset. */
const MASK = 1000;

/** Batch-mean KL(p || q) of distributions given by their logs (rows of [B, K]). */
function klFromLogs(logP: tf.Tensor2D, logQ: tf.Tensor2D): tf.Scalar {
  return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ))).div(logP.shape[0]) as tf.Scalar;
}

/** log [p_target, 1 - p_target] of softmax(z), [B, 2], computed from log-sum-exps (no log of 0). */
function logBinary(z: tf.Tensor2D, gt: tf.Tensor2D): tf.Tensor2D {
  const all = tf.logSumExp(z, 1, true);
  const target = tf.sum(tf.mul(z, gt), 1, true);
  const others = tf.logSumExp(tf.sub(z, tf.mul(gt, MASK)), 1, true);
  return tf.concat([tf.sub(target, all), tf.sub(others, all)], 1) as tf.Tensor2D;
}

/** TCKD and NCKD (each a batch mean, without T^2) of student and teacher logits at temperature T. */
export function decoupledKl(
  logits: tf.Tensor2D,
  teacherLogits: tf.Tensor2D,
  labels: tf.Tensor1D,
  temperature: number,
): { tckd: tf.Scalar; nckd: tf.Scalar } {
  return tf.tidy(() => {
    const s = logits.div(temperature) as tf.Tensor2D;
    const t = teacherLogits.div(temperature) as tf.Tensor2D;
    const gt = tf.oneHot(labels, logits.shape[1]).toFloat() as tf.Tensor2D;
    const tckd = klFromLogs(logBinary(t, gt), logBinary(s, gt));
    const masked = (z: tf.Tensor2D) => tf.logSoftmax(tf.sub(z, tf.mul(gt, MASK))) as tf.Tensor2D;
    const nckd = klFromLogs(masked(t), masked(s));
    return { tckd, nckd };
  });
}

export const dkd: LossFactory = (given) => {
  const { temperature, alpha, beta } = numericOptions("dkd", given, {
    temperature: { default: 4, check: (v) => v > 0, expect: "a number > 0" },
    alpha: { default: 1, check: (v) => v >= 0, expect: "a number >= 0" },
    beta: { default: 8, check: (v) => v >= 0, expect: "a number >= 0" },
  });
  return {
    name: "dkd",
    options: { temperature, alpha, beta },
    needsTeacher: alpha > 0 || beta > 0,
    compute: ({ logits, labels, teacherLogits }) =>
      tf.tidy(() => {
        const hard = crossEntropy(logits, labels);
        if (alpha === 0 && beta === 0) return hard;
        if (!teacherLogits) throw new Error("the dkd loss needs the teacher's logits");
        const { tckd, nckd } = decoupledKl(logits, teacherLogits, labels, temperature);
        const t2 = temperature * temperature;
        return hard.add(tckd.mul(alpha * t2)).add(nckd.mul(beta * t2)) as tf.Scalar;
      }),
  };
};
