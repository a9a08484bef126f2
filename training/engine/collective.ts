// Synchronous collectives between data-parallel replicas (the main thread and worker threads) over
// shared memory: a barrier and an all-reduce (sum). Synchronous on purpose: they run inside a tfjs
// kernel (batch norm) in the middle of a forward or backward pass, where nothing can await.

/** Int32 slots of the control buffer shared by all replicas. */
export const CTRL = {
  /** Incremented by the main thread to start a step (workers wait on it). */
  SEQ: 0,
  /** Workers that finished the current step. */
  DONE: 1,
  /** Replicas arrived at the current barrier. */
  ARRIVED: 2,
  /** Barrier generation: bumped when the last replica arrives. */
  GEN: 3,
  /** Non-zero once any replica failed; everyone waiting gives up. */
  FAILED: 4,
  /** What the step asks: see COMMAND. */
  COMMAND: 5,
  /** The configuration (model, loss, buffers) the step uses; posted to workers before the step. */
  CONFIG: 6,
} as const;
export const CTRL_SLOTS = 7;
export const COMMAND = { STEP: 1, STOP: 2 } as const;

export class ReplicaFailure extends Error {}

/** How long any replica waits for the others before declaring the pool dead. */
export const WAIT_LIMIT_MS = 300_000;

/** Waits while ctrl[slot] === value; throws when a replica failed or the wait exceeds WAIT_LIMIT_MS. */
export function waitWhile(ctrl: Int32Array, slot: number, value: number): void {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  // A short spin first: the other replica is usually a few microseconds away, and waking from
  // Atomics.wait costs more than that.
  for (let i = 0; i < 2000; i++) if (Atomics.load(ctrl, slot) !== value) return;
  while (Atomics.load(ctrl, slot) === value) {
    if (Atomics.load(ctrl, CTRL.FAILED) !== 0) throw new ReplicaFailure("another data-parallel replica failed");
    if (Date.now() > deadline)
      throw new ReplicaFailure(`data-parallel replicas did not answer within ${WAIT_LIMIT_MS / 1000} s`);
    Atomics.wait(ctrl, slot, value, 50);
  }
}

/** Marks the pool failed and wakes every waiter. */
export function signalFailure(ctrl: Int32Array): void {
  Atomics.store(ctrl, CTRL.FAILED, 1);
  for (const slot of [CTRL.SEQ, CTRL.DONE, CTRL.GEN]) Atomics.notify(ctrl, slot);
}

/** Blocks until all `replicas` have called it (a generation-counting barrier). */
export function barrier(ctrl: Int32Array, replicas: number): void {
  const gen = Atomics.load(ctrl, CTRL.GEN);
  if (Atomics.add(ctrl, CTRL.ARRIVED, 1) === replicas - 1) {
    Atomics.store(ctrl, CTRL.ARRIVED, 0);
    Atomics.add(ctrl, CTRL.GEN, 1);
    Atomics.notify(ctrl, CTRL.GEN);
  } else {
    waitWhile(ctrl, CTRL.GEN, gen);
  }
}

/**
 * An all-reduce (sum, in place) for replica `rank` of `replicas`, over `slots`: 2 * replicas vectors
 * of `width` doubles. Each call writes the replica's vector, passes a barrier, and sums all vectors
 * in rank order, so every replica gets bit-identical sums. Consecutive calls alternate between two
 * halves of `slots`: a replica can only overwrite a half after the next barrier, which the others
 * pass only once they have read it, so one barrier per call is enough.
 */
export function makeAllReduce(
  ctrl: Int32Array,
  slots: Float64Array,
  replicas: number,
  rank: number,
  width: number,
): { allReduce: (v: Float64Array) => void; reset: () => void } {
  let call = 0;
  return {
    allReduce(v: Float64Array): void {
      if (v.length > width) throw new Error(`all-reduce of ${v.length} values exceeds the ${width} reserved`);
      const half = (call++ & 1) * replicas * width;
      slots.set(v, half + rank * width);
      barrier(ctrl, replicas);
      v.fill(0);
      for (let r = 0; r < replicas; r++) {
        const base = half + r * width;
        for (let i = 0; i < v.length; i++) v[i]! += slots[base + i]!;
      }
    },
    /** Called by every replica at the start of a step, so all agree on which half comes next. */
    reset(): void {
      call = 0;
    },
  };
}
