// What tfjs hands every kernel function: the engine's kernels take it as tfjs' own KernelFunc does.
import type * as tf from "@tensorflow/tfjs";

export type KernelArgs = Parameters<tf.KernelFunc>[0];
