import type { Checkpoint } from "../../../training/train/checkpoint.ts";

/** A checkpoint without its wall-clock quantities: everything that must match exactly between runs. */
export function comparable(c: Checkpoint) {
  const { wallSeconds: _w, engine: _e, history, ...meta } = c.meta;
  return { graph: c.graph, weights: c.weights, optimizer: c.optimizer, meta, history: history.map(({ imagesPerSecond: _i, seconds: _s, ...h }) => h) };
}
