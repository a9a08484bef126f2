// What every distillation loss is: a function of the student's logits, the labels and (when it
// needs one) the teacher's logits on the same augmented batch, returning the batch-mean loss.
// Multi-label losses read multi-hot targets instead of class indices; feature methods also read
// intermediate tensors of the student and the teacher at layers they name.
import type * as tf from "@tensorflow/tfjs";
import type { Graph } from "../model/graph.ts";

export interface LossInputs {
  /** Student logits [B, classes]. */
  logits: tf.Tensor2D;
  /** Class indices [B], int32. */
  labels: tf.Tensor1D;
  /** Teacher logits [B, classes]; present when the loss needs a teacher. */
  teacherLogits?: tf.Tensor2D;
  /** Multi-label data: [B, classes], 1 where the class is present, else 0. */
  targets?: tf.Tensor2D;
  /** Feature methods: the student's outputs of the `features` layers (training mode; gradients flow). */
  features?: tf.Tensor4D[];
  /** Feature methods: the teacher's outputs of the same layers of its graph (inference mode). */
  teacherFeatures?: tf.Tensor4D[];
}

export interface Loss {
  name: string;
  /** The options after defaults, as recorded in configs and checkpoints. */
  options: Record<string, number>;
  /** Needs the teacher's logits. */
  needsTeacher: boolean;
  /** A loss for multi-label data (sigmoid outputs, multi-hot targets); absent: single-label (softmax). */
  multiLabel?: boolean;
  /**
   * Feature methods: the layers of a graph whose outputs the loss compares, asked of the student's
   * graph and of the teacher's (which then runs in tfjs, where its intermediate tensors exist).
   */
  features?: (graph: Graph) => string[];
  /**
   * The weight of the labels-only term inside the loss (absent: 1), so that a log can split the loss
   * into that term and the rest (the distillation part): rest = loss - labelWeight * cross-entropy.
   */
  labelWeight?: number;
  compute(inputs: LossInputs): tf.Scalar;
}

export type LossFactory = (options: Record<string, unknown>) => Loss;

/** Reads numeric options with defaults and ranges; unknown names are errors (typos must not pass silently). */
export function numericOptions<K extends string>(
  loss: string,
  given: Record<string, unknown>,
  spec: Record<K, { default: number; check: (v: number) => boolean; expect: string }>,
): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(spec, key))
      throw new Error(`loss "${loss}" has no option "${key}" (options: ${Object.keys(spec).join(", ") || "none"})`);
  }
  for (const key of Object.keys(spec) as K[]) {
    const v = given[key] ?? spec[key].default;
    if (typeof v !== "number" || !Number.isFinite(v) || !spec[key].check(v))
      throw new Error(`loss "${loss}": option ${key} must be ${spec[key].expect}, got ${JSON.stringify(v)}`);
    out[key] = v;
  }
  return out;
}
