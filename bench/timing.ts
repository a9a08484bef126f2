// What the benchmarks time with: summary statistics of a series, a timed loop, and the synthetic
// input every runtime is given.

export interface Stats {
  median: number;
  p99: number;
  mean: number;
  n: number;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  return {
    median: quantile(s, 0.5),
    p99: quantile(s, 0.99),
    mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    n: s.length,
  };
}

/** Times `runs` calls of `run` after `warmup` untimed ones. */
export async function timeRuns(run: () => Promise<unknown>, warmup: number, runs: number): Promise<Stats> {
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return stats(times);
}

/** A model's synthetic batch-1 input for an input of `shape` (batch first): the same in every runtime. */
export function referenceInput(shape: readonly number[]): { dims: number[]; data: Float32Array } {
  const dims = [1, ...shape.slice(1)];
  return { dims, data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)) };
}
