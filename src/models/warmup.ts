// Warm-up runs for a new session. A fresh isolate runs its first inferences in V8's baseline WASM
// tier (Liftoff): 2-3x slower than at steady speed, for the first 10-30 runs. The store runs the
// model on a fixed synthetic input until its speed holds steady, in one of two places:
// - blocking: before the session serves anyone, as part of its load (the first request pays it on
//   top of the cold start; every later request gets the optimized code);
// - background: after the session's first run, in `waitUntil`, with requests arriving meanwhile
//   going first (serial.ts); those requests still run on the baseline tier.
import type { ModelEntry } from "../../models/schema.ts";

export type WarmupMode = "blocking" | "background";
export const WARMUP_MODES: readonly WarmupMode[] = ["blocking", "background"];

export interface WarmupOptions {
  /** Before the session serves (blocking) or after its first run, in the background. */
  mode: WarmupMode;
  /** Most warm-up runs per session; 0 turns warm-up off. */
  maxRuns: number;
  /** Runs always made, steady or not (the baseline tier can look steady between its own slow runs). */
  minRuns: number;
  /** Speed is steady when the mean of the last `window` runs is within `tolerance` of the `window` before. */
  window: number;
  tolerance: number;
}

/**
 * The Worker's default (WARMUP_RUNS sets maxRuns, config/worker-config.ts). The store's own default is off. At least 30 runs:
 * the baseline tier can hold a steady (slow) speed for a dozen runs before V8 swaps in the optimized
 * code, which it compiles in the background (seen in a smoke run: 16 runs "steady" at 43 ms, the
 * next requests at 5 ms).
 */
export const DEFAULT_WARMUP: WarmupOptions = { mode: "blocking", maxRuns: 60, minRuns: 30, window: 5, tolerance: 0.15 };
export const WARMUP_OFF: WarmupOptions = { ...DEFAULT_WARMUP, maxRuns: 0 };

export interface WarmupResult {
  model: string;
  runs: number;
  /** Wall time of the runs themselves (not the waits for requests between them). */
  ms: number;
  /** Whether it stopped on steady speed rather than at maxRuns. */
  steady: boolean;
  /** Mean of the last window, in ms; workerd's clock ticks in whole ms (and on Cloudflare may not move within a request). */
  lastWindowMeanMs: number;
}

/** One input of the model's shape (batch 1), the same every time: a smooth pattern rather than zeros, so no kernel takes a shortcut. */
export function syntheticInput(entry: ModelEntry): { input: Float32Array; dims: number[] } {
  const dims = [1, ...entry.input.shape.slice(1)];
  const size = dims.reduce((a, b) => a * b, 1);
  return { input: Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37)), dims };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Whether the last two windows of run times agree within the tolerance. A clock that did not move
 * over both windows says nothing (Cloudflare's clock may stand still while code runs), so that is not steady.
 */
export function isSteady(times: number[], { window, tolerance }: Pick<WarmupOptions, "window" | "tolerance">): boolean {
  if (times.length < 2 * window) return false;
  const last = mean(times.slice(-window));
  const before = mean(times.slice(-2 * window, -window));
  if (last + before === 0) return false;
  return Math.abs(last - before) <= tolerance * Math.max(last, before);
}

/** One warm-up run, answering its own duration in ms (measured with `now` once it starts). */
export type TimedRun = (input: Float32Array, dims: number[], now: () => number) => Promise<number>;

/** Runs `runOnce` until steady (after minRuns), maxRuns, or `stopped()` (the session was replaced). */
export async function warmUp(
  entry: ModelEntry,
  runOnce: TimedRun,
  options: WarmupOptions,
  stopped = () => false,
  now = () => performance.now(),
): Promise<WarmupResult> {
  const { input, dims } = syntheticInput(entry);
  const times: number[] = [];
  let steady = false;
  while (times.length < options.maxRuns && !stopped()) {
    // runOnce times itself: the wait for requests that go first is not the model's speed.
    times.push(await runOnce(input, dims, now));
    if (times.length >= options.minRuns && isSteady(times, options)) {
      steady = true;
      break;
    }
  }
  return {
    model: entry.name,
    runs: times.length,
    ms: times.reduce((a, b) => a + b, 0),
    steady,
    lastWindowMeanMs: times.length ? mean(times.slice(-options.window)) : 0,
  };
}
