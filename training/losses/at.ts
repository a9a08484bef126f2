// Attention transfer (Zagoruyko, Komodakis 2017, "Paying More Attention to Attention"), in
// mdistiller's form: the attention map of a feature tensor is the mean over channels of |A|^p,
// flattened and scaled to unit L2 norm per image; the student learns
//   CE + beta * sum over the stage outputs of mean((Q_student - Q_teacher)^2)
// with beta 1000, p 2, at the end of each ResNet stage. It compares maps of equal spatial size,
// which teacher and students of one ResNet family have at every stage (same strides), and it adds
// no parameters: nothing to train beside the student and nothing to drop at export (FitNets' hints
// would need an adapter per stage to match channel counts).
import * as tf from "@tensorflow/tfjs";
import type { Graph } from "../model/graph.ts";
import { crossEntropy } from "./ce.ts";
import { type LossFactory, numericOptions } from "./loss.ts";

/** The last block output of each stage of a ResNet built by model/resnet.ts ("stage<s>.block<b>.out"). */
export function stageOutputs(graph: Graph): string[] {
  const last = new Map<string, string>();
  for (const l of graph.layers) {
    const m = /^(stage\d+)\.block\d+\.out$/.exec(l.name);
    if (m) last.set(m[1]!, l.name);
  }
  if (last.size === 0)
    throw new Error("attention transfer needs a ResNet with stages (layers named stage<s>.block<b>.out)");
  return [...last.values()];
}

/** [B, H, W, C] -> [B, H*W]: mean over channels of |x|^p, each row scaled to unit L2 norm. */
export function attentionMap(x: tf.Tensor4D, p: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, h, w] = x.shape;
    const map = tf.mean(tf.pow(tf.abs(x), p), 3).reshape([b, h * w]);
    const norm = tf.maximum(tf.norm(map, 2, 1, true), 1e-12);
    return tf.div(map, norm) as tf.Tensor2D;
  });
}

export const at: LossFactory = (given) => {
  const { beta, p } = numericOptions("at", given, {
    beta: { default: 1000, check: (v) => v >= 0, expect: "a number >= 0" },
    p: { default: 2, check: (v) => v > 0, expect: "a number > 0" },
  });
  return {
    name: "at",
    options: { beta, p },
    needsTeacher: false,
    features: stageOutputs,
    compute: ({ logits, labels, features, teacherFeatures }) =>
      tf.tidy(() => {
        const hard = crossEntropy(logits, labels);
        if (beta === 0) return hard;
        if (!features || !teacherFeatures)
          throw new Error("the at loss needs the student's and the teacher's stage outputs");
        if (features.length !== teacherFeatures.length)
          throw new Error(
            `attention transfer: the student has ${features.length} stages, the teacher ${teacherFeatures.length}`,
          );
        let sum = tf.scalar(0);
        features.forEach((f, i) => {
          const g = teacherFeatures[i]!;
          if (f.shape[1] !== g.shape[1] || f.shape[2] !== g.shape[2]) {
            throw new Error(
              `attention transfer: stage ${i + 1} is ${f.shape[1]}x${f.shape[2]} in the student, ${g.shape[1]}x${g.shape[2]} in the teacher`,
            );
          }
          sum = sum.add(tf.mean(tf.squaredDifference(attentionMap(f, p), attentionMap(g, p))));
        });
        return hard.add(sum.mul(beta)) as tf.Scalar;
      }),
  };
};
