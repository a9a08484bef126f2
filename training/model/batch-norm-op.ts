// Batch normalization in training mode, the op the model's forward pass calls. A backend may plug in
// a fused kernel under the name BN_TRAIN (the engine does, for wasm: engine/batchnorm.ts); without
// one, the op is written with tfjs' broadcasting ops. The state here (the cross-replica sum, the
// last kernel's count) is shared with that kernel, which lives above the model in the engine.
import * as tf from "@tensorflow/tfjs";

export const BN_TRAIN = "NarrowdeepBatchNormTrain";
export const BN_TRAIN_GRAD = "NarrowdeepBatchNormTrainGrad";

export interface BatchNormResult {
  y: tf.Tensor;
  /** Per-channel batch mean. */
  mean: tf.Tensor1D;
  /** Per-channel biased batch variance. */
  variance: tf.Tensor1D;
  /** Values per channel behind the statistics (over all replicas when data-parallel). */
  count: number;
}

/** Sums a vector of per-channel statistics over all replicas, in place. */
export type AllReduce = (values: Float64Array) => void;

let allReduce: AllReduce | null = null;
/** The count of the last forward kernel call (kernels run synchronously inside runKernel). */
let lastCount = 0;

/** The cross-replica sum a fused kernel applies to its statistics (null: this process has the whole batch). */
export function batchNormAllReduce(): AllReduce | null {
  return allReduce;
}

/** Called by a fused forward kernel with the values per channel behind its statistics. */
export function recordBatchNormCount(count: number): void {
  lastCount = count;
}

/** Installs the cross-replica sum used by the wasm kernels (null: this process has the whole batch). */
export function setBatchNormAllReduce(fn: AllReduce | null): void {
  allReduce = fn;
}

/**
 * y = (x - mean) / sqrt(variance + epsilon) * gamma + beta over the last axis, with the batch's
 * statistics. Gradients flow to x, gamma and beta (and through mean and variance if they are used).
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): BatchNormResult {
  if (tf.getBackend() === "wasm" && tf.getKernel(BN_TRAIN, "wasm")) {
    const [y, mean, variance] = tf.engine().runKernel(BN_TRAIN, { x, gamma, beta }, { epsilon }) as tf.Tensor[];
    return { y: y!, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count: lastCount };
  }
  if (allReduce) throw new Error("synchronized batch norm needs the wasm backend's fused kernel");
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const y = x.sub(mean).mul(variance.add(epsilon).rsqrt().mul(gamma)).add(beta);
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D, count: x.size / x.shape[x.rank - 1]! };
}
