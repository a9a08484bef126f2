// A one-line progress bar on a terminal (redrawn in place), or a plain line every `intervalMs` when
// the output is a file or a CI log, so logs stay readable.

import type { RunRemaining } from "./eta.ts";

export interface ProgressStats {
  done: number;
  total: number;
  imagesPerSecond: number;
  loss: number;
  accuracy: number;
  /** What is left of the whole run (this process's sub-runs), when known. */
  run?: RunRemaining;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** "2 sub-runs, 17 epochs left, ETA 1h05m": the whole run's remaining work and time. */
export function runRemainingText(r: RunRemaining): string {
  if (r.subRuns === 0) return "nothing left";
  const epochs = Math.ceil(r.epochs - 1e-9);
  return `${r.subRuns} sub-run${r.subRuns === 1 ? "" : "s"}, ${epochs} epoch${epochs === 1 ? "" : "s"} left, ETA ${formatDuration(r.seconds)}`;
}

export function progressLine(label: string, p: ProgressStats, width = 24): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const filled = Math.round(frac * width);
  const bar =
    "=".repeat(Math.max(0, filled - 1)) + (filled > 0 ? (frac < 1 ? ">" : "=") : "") + " ".repeat(width - filled);
  const eta = p.imagesPerSecond > 0 ? (p.total - p.done) / p.imagesPerSecond : Infinity;
  return `${label} [${bar}] ${p.done}/${p.total} ${p.imagesPerSecond.toFixed(0)} img/s ETA ${formatDuration(eta)} loss ${p.loss.toFixed(4)} acc ${(100 * p.accuracy).toFixed(1)}%${p.run ? ` | run: ${runRemainingText(p.run)}` : ""}`;
}

export class ProgressBar {
  private last = 0;
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean } = process.stderr,
    private readonly intervalMs = 30_000,
    private readonly enabled = true,
  ) {}

  update(label: string, p: ProgressStats): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (this.out.isTTY) {
      if (now - this.last < 100 && p.done < p.total) return;
      this.out.write(`\r\x1b[2K${progressLine(label, p)}`);
      this.drawn = true;
    } else if (now - this.last >= this.intervalMs) {
      this.out.write(`${progressLine(label, p)}\n`);
    } else return;
    this.last = now;
  }

  /** Clears the bar so a log line can follow. */
  clear(): void {
    if (this.drawn && this.out.isTTY) this.out.write("\r\x1b[2K");
    this.drawn = false;
  }
}
