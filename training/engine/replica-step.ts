// What the main thread and the worker replicas of data-parallel training share: how a batch is split,
// how one replica computes its share's gradients, and where everything lives in shared memory.
import * as tf from "@tensorflow/tfjs";
import type { Batch } from "../data/batches.ts";
import type { Loss } from "../losses/index.ts";
import type { Model } from "../model/forward.ts";
import { type Graph, paramSpecs } from "../model/graph.ts";
import { type Gradients, lossAndGradients } from "./step.ts";

/** Share sizes of a batch of `size` over `replicas` (the first ones get the remainder). */
export function splitSizes(size: number, replicas: number): number[] {
  const base = Math.floor(size / replicas);
  return Array.from({ length: replicas }, (_, r) => base + (r < size % replicas ? 1 : 0));
}

/**
 * Gradients of this replica's share of a batch of `total` images. The loss is a batch mean, so the
 * share's mean is weighted by share/total: the replicas' sums are then the whole batch's loss and
 * gradients (batch norm sums its statistics across replicas, see batchnorm.ts).
 */
export function shareGradients(
  model: Model,
  share: Batch,
  total: number,
  loss: Loss,
  teacherLogits: Float32Array | null,
): Gradients {
  const weight = share.size / total;
  const weighted: Loss =
    weight === 1 ? loss : { ...loss, compute: (inputs) => tf.mul(loss.compute(inputs), weight) as tf.Scalar };
  return lossAndGradients(model, share, weighted, teacherLogits);
}

export function trainableSpecs(graph: Graph) {
  return paramSpecs(graph).filter((s) => s.kind === "trainable");
}

/** Doubles one batch-norm all-reduce needs at most: [count, 4 x channels] (see batchnorm.ts). */
function statsWidth(graph: Graph): number {
  const channels = graph.layers.reduce((m, l) => (l.op === "batchnorm" ? Math.max(m, l.channels) : m), 1);
  return 1 + 4 * channels;
}

export interface WorkerSlots {
  /** [share size, 0, 0, 0] written by the main thread. */
  meta: Float64Array;
  images: Float32Array;
  labels: Int32Array;
  teacher: Float32Array;
  /** The worker's gradients, trainable parameters back to back in paramSpecs order. */
  grads: Float32Array;
  /** [loss, correct, cross-entropy sum] written by the worker. */
  result: Float64Array;
}

export interface StepLayout {
  replicas: number;
  /** Largest global batch the buffers hold. */
  capacity: number;
  statsWidth: number;
  /** All-reduce slots (collective.ts). */
  reduce: Float64Array;
  /** The trainable weights, broadcast by the main thread before each step. */
  weights: Float32Array;
  /** Index 0 is unused (the main thread is replica 0). */
  workers: WorkerSlots[];
}

/** Views over `buffer` (or a new SharedArrayBuffer of the right size when none is given). */
export function stepLayout(
  graph: Graph,
  replicas: number,
  capacity: number,
  buffer?: SharedArrayBuffer,
): { layout: StepLayout; buffer: SharedArrayBuffer } {
  const params = trainableSpecs(graph).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const pixels = graph.input.height * graph.input.width * graph.input.channels;
  const share = Math.ceil(capacity / replicas);
  const width = statsWidth(graph);
  // Two passes: the first measures, the second makes views on the buffer.
  const build = (buf: SharedArrayBuffer | null) => {
    let offset = 0;
    const take = <T>(make: (b: SharedArrayBuffer, o: number, n: number) => T, count: number, bytes: number): T => {
      const at = offset;
      offset += Math.ceil((count * bytes) / 8) * 8;
      return buf ? make(buf, at, count) : (null as T);
    };
    const f64 = (n: number) => take((b, o, c) => new Float64Array(b, o, c), n, 8);
    const f32 = (n: number) => take((b, o, c) => new Float32Array(b, o, c), n, 4);
    const i32 = (n: number) => take((b, o, c) => new Int32Array(b, o, c), n, 4);
    const reduce = f64(2 * replicas * width);
    const weights = f32(params);
    const workers: WorkerSlots[] = [];
    for (let r = 0; r < replicas; r++) {
      if (r === 0) {
        workers.push(null as unknown as WorkerSlots);
        continue;
      }
      workers.push({
        meta: f64(4),
        images: f32(share * pixels),
        labels: i32(share),
        teacher: f32(share * graph.numClasses),
        grads: f32(params),
        result: f64(3),
      });
    }
    return { bytes: offset, layout: { replicas, capacity, statsWidth: width, reduce, weights, workers } };
  };
  const buf = buffer ?? new SharedArrayBuffer(build(null).bytes);
  return { layout: build(buf).layout, buffer: buf };
}

/** Copies the trainable parameters (paramSpecs order) into `out`. */
export function writeParams(model: Model, out: Float32Array): void {
  let offset = 0;
  for (const spec of trainableSpecs(model.graph)) {
    const values = model.params.get(spec.name)!.dataSync() as Float32Array;
    out.set(values, offset);
    offset += values.length;
  }
}

/** Assigns the trainable parameters from `values` (paramSpecs order). */
export function readParams(model: Model, values: Float32Array): void {
  let offset = 0;
  tf.tidy(() => {
    for (const spec of trainableSpecs(model.graph)) {
      const v = model.params.get(spec.name)!;
      v.assign(tf.tensor(values.slice(offset, offset + v.size), v.shape)); // slice: a private copy, not a view of shared memory
      offset += v.size;
    }
  });
}

/** Writes gradients (by parameter name) into `out` in paramSpecs order. */
export function writeGradients(graph: Graph, grads: Map<string, tf.Tensor>, out: Float32Array): void {
  let offset = 0;
  for (const spec of trainableSpecs(graph)) {
    const g = grads.get(spec.name);
    if (!g) throw new Error(`no gradient for "${spec.name}"`);
    const values = g.dataSync() as Float32Array;
    out.set(values, offset);
    offset += values.length;
  }
}
