// The training engine in one call: the tfjs backend (backend.ts) plus, on wasm, data-parallel
// replicas on worker threads (data-parallel.ts) so that every core trains. Usage:
//
//   const engine = await startTrainingEngine(config.backend);      // logs what runs
//   train(spec, { ...ctx, engine, gradients: engine.gradients });  // train/loop.ts
//   await engine.close();
import os from "node:os";
import { type GradientFn, lossAndGradients } from "../train/step.ts";
import { type Engine, type InitOptions, initBackend } from "./backend.ts";
import { DataParallel } from "./data-parallel.ts";
import { nativeConvolutionsActive } from "./native-conv.ts";

export { BACKENDS, CONVOLUTIONS, type BackendName, type Convolutions, type Engine, currentEngine, initBackend, isBackendName } from "./backend.ts";

export interface TrainingEngine extends Engine {
  /** Threads computing each step (1 unless the wasm backend runs data-parallel). */
  replicas: number;
  /** Loss and gradients of one batch: a drop-in for train/step.ts' lossAndGradients. */
  gradients: GradientFn;
  close(): Promise<void>;
}

export interface TrainingEngineOptions extends InitOptions {
  /** Data-parallel replicas on wasm; default: defaultReplicas(). 1 disables it. */
  replicas?: number;
}

/**
 * One replica per idle core (at most 8). Replicas move in lock-step, so one the OS deschedules
 * stalls the rest: on a machine already busy (1-minute load average) fewer replicas finish sooner.
 */
export function defaultReplicas(cores = os.availableParallelism(), load = os.loadavg()[0] ?? 0): number {
  return Math.max(1, Math.min(8, cores - Math.round(load)));
}

export async function startTrainingEngine(requested?: string, { replicas, log = console.log, convolutions = "auto" }: TrainingEngineOptions = {}): Promise<TrainingEngine> {
  const engine = await initBackend(requested, { log, convolutions });
  const want = replicas ?? defaultReplicas();
  if (engine.backend === "wasm" && replicas === undefined && want < os.availableParallelism()) {
    log(`engine: ${want} data-parallel replica(s) for ${os.availableParallelism()} cores: the load average is ${os.loadavg()[0]!.toFixed(1)} (--replicas sets it)`);
  }
  if (engine.backend !== "wasm" || want <= 1) return { ...engine, replicas: 1, gradients: lossAndGradients, close: async () => {} };
  // Replicas use the convolutions the main thread got ("wasm" only where native did not load there).
  const pool = await DataParallel.start({ replicas: want, convolutions: nativeConvolutionsActive() ? "native" : "wasm" });
  const device = pool.describe(engine.device);
  log(`engine: training data-parallel on ${device}`);
  return { backend: engine.backend, device, replicas: want, gradients: pool.gradients, close: () => pool.close() };
}
