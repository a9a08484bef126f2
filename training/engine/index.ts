// The training engine in one call: the tfjs backend (backend.ts) plus, on wasm, data-parallel
// replicas on worker threads (data-parallel.ts) so that every core trains. Usage:
//
//   const engine = await startTrainingEngine(config.backend);      // logs what runs
//   train(spec, { ...ctx, engine, gradients: engine.gradients });  // train/loop.ts
//   await engine.close();
import os from "node:os";
import { type GradientFn, lossAndGradients } from "./step.ts";
import { type Engine, type InitOptions, initBackend } from "./backend.ts";
import { DataParallel } from "./data-parallel.ts";
import { nativeConvolutionsActive } from "./native-conv.ts";

export {
  BACKENDS,
  CONVOLUTIONS,
  type BackendName,
  type Convolutions,
  type Engine,
  currentEngine,
  initBackend,
  isBackendName,
} from "./backend.ts";

export interface TrainingEngine extends Engine {
  /** Threads computing each step (1 unless the wasm backend runs data-parallel). */
  replicas: number;
  /** Loss and gradients of one batch: a drop-in for step.ts' lossAndGradients. */
  gradients: GradientFn;
  close(): Promise<void>;
}

export interface TrainingEngineOptions extends InitOptions {
  /** Data-parallel replicas on wasm; default: one per idle core (defaultReplicas). 1 disables it. */
  replicas?: number;
}

/**
 * One replica per idle core (at most 8). Replicas move in lock-step, so one the OS deschedules
 * stalls the rest: on a machine already busy, fewer replicas finish sooner.
 */
export function defaultReplicas(cores: number, busy: number): number {
  return Math.max(1, Math.min(8, cores - Math.round(busy)));
}

/**
 * Cores busy right now, from the CPU times over `ms`. Not the load average: that decays over a
 * minute, so a process that has just ended (a benchmark, the previous run) still counts.
 */
export async function busyCores(ms = 500): Promise<number> {
  const idle = () => os.cpus().reduce((sum, c) => sum + c.times.idle, 0);
  const [i0, t0] = [idle(), performance.now()];
  await new Promise((resolve) => setTimeout(resolve, ms));
  const idleCores = (idle() - i0) / (performance.now() - t0); // times are in ms
  return Math.max(0, os.cpus().length - idleCores);
}

/**
 * Starts tfjs on `requested` (initBackend) and, on wasm, the data-parallel replicas; `close()` stops
 * them.
 *
 * @example
 * ```ts
 * import { startTrainingEngine } from "./engine/index.ts";
 *
 * const engine = await startTrainingEngine(config.backend, { replicas: 4, convolutions: "auto" });
 * try {
 *   await train(spec, { ...ctx, engine, gradients: engine.gradients }); // train/loop.ts
 * } finally {
 *   await engine.close();
 * }
 * ```
 */
export async function startTrainingEngine(
  requested?: string,
  { replicas, log = console.log, convolutions = "auto" }: TrainingEngineOptions = {},
): Promise<TrainingEngine> {
  const engine = await initBackend(requested, { log, convolutions });
  const cores = os.availableParallelism();
  const busy = engine.backend === "wasm" && replicas === undefined ? await busyCores() : 0;
  const want = replicas ?? defaultReplicas(cores, busy);
  if (engine.backend === "wasm" && replicas === undefined && want < cores) {
    log(
      `engine: ${want} data-parallel replica(s) for ${cores} cores: ${busy.toFixed(1)} cores are busy with other work (--replicas sets it)`,
    );
  }
  if (engine.backend !== "wasm" || want <= 1)
    return { ...engine, replicas: 1, gradients: lossAndGradients, close: async () => {} };
  // Replicas use the convolutions the main thread got ("wasm" only where native did not load there).
  const pool = await DataParallel.start({
    replicas: want,
    convolutions: nativeConvolutionsActive() ? "native" : "wasm",
  });
  const device = pool.describe(engine.device);
  log(`engine: training data-parallel on ${device}`);
  return { backend: engine.backend, device, replicas: want, gradients: pool.gradients, close: () => pool.close() };
}
