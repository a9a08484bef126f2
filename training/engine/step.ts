// One optimizer step, kept small so that an engine can swap how the gradients are computed.
//
// How the training pieces fit (one step of train/loop.ts):
//   data/batches.ts     makeBatch(...)           -> Batch (normalized, augmented images + labels)
//   train/teacher.ts    teacher.logits(batch)    -> the teacher's logits on that same batch (KD only)
//   engine/step.ts      lossAndGradients(...)    -> loss, correct count, gradients by parameter name
//                                                   (batch-norm moving statistics update as a side effect)
//   engine/optimizer.ts sgd.apply(grads, lr)     -> new weights; lr from train/schedule.ts
// A data-parallel engine replaces lossAndGradients with one that splits the batch over workers and
// averages their gradients (GradientFn below); the optimizer, schedule and loop stay as they are.
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batches.ts";
import type { Loss } from "../losses/index.ts";
import { type Model, forward, forwardWithFeatures } from "../model/forward.ts";
import { type Graph, paramSpecs } from "../model/graph.ts";
import { labelLoss, topOneCorrect } from "../losses/metrics.ts";
import type { Sgd } from "./optimizer.ts";

export interface Gradients {
  /** Batch-mean loss. */
  loss: number;
  /** Correctly classified images of the batch (top-1, training mode; multi-label: a class present). */
  correct: number;
  /**
   * Cross-entropy with the labels summed over the batch's images, whatever the loss is: KD's hard
   * part, so a KD run's training loss compares with its baseline's (multi-label: sigmoid cross-entropy).
   */
  crossEntropySum: number;
  /** By parameter name; the caller disposes them. */
  grads: Map<string, tf.Tensor>;
}

export type GradientFn = (model: Model, batch: Batch, loss: Loss, teacherLogits: Float32Array | null) => Gradients;

/**
 * A feature method's teacher: its outputs of the layers `layers` names in its graph, for the
 * student's normalized batch, in inference mode (constants to the student's gradients).
 */
export type FeatureTeacher = (images: tf.Tensor4D, layers: (graph: Graph) => string[]) => tf.Tensor4D[];

/** Loss and gradients of one batch on this thread (feature methods: with the teacher's features). */
export function lossAndGradients(
  model: Model,
  batch: Batch,
  loss: Loss,
  teacherLogits: Float32Array | null,
  featureTeacher?: FeatureTeacher,
): Gradients {
  const { height, width, channels } = model.graph.input;
  const classes = model.graph.numClasses;
  const trainable = paramSpecs(model.graph).filter((s) => s.kind === "trainable");
  const variables = trainable.map((s) => model.params.get(s.name)!);
  const [value, correct, ceSum, ...grads] = tf.tidy(() => {
    const images = tf.tensor4d(batch.images, [batch.size, height, width, channels]);
    const labels = tf.tensor1d(batch.labels, "int32");
    const targets = batch.targets ? tf.tensor2d(batch.targets, [batch.size, classes]) : undefined;
    const teacher = teacherLogits ? tf.tensor2d(teacherLogits, [batch.size, classes]) : undefined;
    // Computed before the tape: the teacher's features are constants to the student's gradients.
    const teacherFeatures = loss.features ? featureTeacher!(images, loss.features) : undefined;
    let logits: tf.Tensor2D | undefined;
    const { value, grads } = tf.variableGrads(() => {
      if (!loss.features) {
        logits = tf.keep(forward(model, images, { training: true })); // variableGrads disposes what f leaves
        return loss.compute({ logits, labels, targets, teacherLogits: teacher });
      }
      const out = forwardWithFeatures(model, images, { training: true }, loss.features(model.graph));
      logits = tf.keep(out.logits);
      return loss.compute({ logits, labels, targets, teacherLogits: teacher, features: out.features, teacherFeatures });
    }, variables);
    const correct = topOneCorrect(logits!, labels, targets);
    const ceSum = tf.mul(labelLoss(logits!, labels, targets), batch.size);
    logits!.dispose();
    return [value, correct, ceSum, ...variables.map((v) => grads[v.name]!)];
  });
  const result = {
    loss: value!.dataSync()[0]!,
    correct: correct!.dataSync()[0]!,
    crossEntropySum: ceSum!.dataSync()[0]!,
    grads: new Map(trainable.map((s, i) => [s.name, grads[i]!])),
  };
  value!.dispose();
  correct!.dispose();
  ceSum!.dispose();
  return result;
}

/** Computes the gradients of one batch and applies them; returns the batch's loss, correct count and cross-entropy sum. */
export function trainStep(
  model: Model,
  sgd: Sgd,
  batch: Batch,
  loss: Loss,
  teacherLogits: Float32Array | null,
  lr: number,
  gradients: GradientFn = lossAndGradients,
): { loss: number; correct: number; crossEntropySum: number } {
  const g = gradients(model, batch, loss, teacherLogits);
  try {
    if (!Number.isFinite(g.loss)) throw new Error(`training diverged: loss is ${g.loss} (lower the learning rate)`);
    sgd.apply(g.grads, lr);
  } finally {
    for (const t of g.grads.values()) t.dispose();
  }
  return { loss: g.loss, correct: g.correct, crossEntropySum: g.crossEntropySum };
}
