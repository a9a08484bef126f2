import type { Checkpoint } from "../../../training/train/checkpoint.ts";

/**
 * A checkpoint without what legitimately differs between two runs of the same configuration (wall
 * clock, the run directory the teacher was read from): everything left must match exactly.
 */
export function comparable(c: Checkpoint) {
  const { wallSeconds: _w, engine: _e, teacher, history, ...meta } = c.meta;
  return {
    graph: c.graph,
    weights: c.weights,
    optimizer: c.optimizer,
    meta,
    teacherEngine: teacher?.engine,
    history: history.map(({ imagesPerSecond: _i, seconds: _s, ...h }) => h),
  };
}
