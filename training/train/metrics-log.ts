// metrics.jsonl, the run's plottable log: one JSON object a line, for every sub-run, at the end of
// every epoch and every `metricsEvery` optimizer steps (loop.ts). pandas reads it with
// `read_json(path, lines=True)`; `npm run curves` turns it into metrics.csv and curves.svg.
//
// Whole lines only: each record is one write of one line, under a lock shared by the processes of a
// run; a line torn by a crash is cut off before the next append, and readers skip it.
// Resuming a sub-run (reconcile) keeps its records up to the checkpoint's step, drops the rest (the
// steps after the checkpoint are trained again and logged again, so no step is missing or doubled),
// and writes the epoch records the checkpoint's history has and the file lacks (a missing file,
// or a kill between checkpoint and log line).
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { withFileLock } from "../io/file-lock.ts";
import type { CheckpointMeta, EpochMetrics } from "./checkpoint.ts";

export const METRICS_FILE = "metrics.jsonl";

export interface MetricsRecord {
  subRun: string;
  /** "step": running means of the epoch so far; "epoch": the finished epoch, with validation. */
  kind: "step" | "epoch";
  /** 1-based: the epoch in progress (step records) or finished (epoch records). */
  epoch: number;
  /** Optimizer steps taken in the sub-run. */
  step: number;
  /** Training loss, mean over the epoch so far (KD: the whole distillation loss). */
  loss: number;
  /** Cross-entropy with the labels, the same mean (multi-label: sigmoid cross-entropy). */
  crossEntropy?: number;
  /** The rest of the loss: loss - labelWeight * crossEntropy (distilling losses only). */
  distillation?: number;
  trainAccuracy: number;
  /** The learning rate of the record's last step. */
  learningRate: number;
  /** Training images per wall-clock second over the epoch so far. */
  imagesPerSecond: number;
  /** Epoch records: validation (and, at the last epoch, test) accuracy, or mAP on multi-label data. */
  valAccuracy?: number;
  valLoss?: number;
  valMap?: number;
  testAccuracy?: number;
  testMap?: number;
  /** When the record was written (ISO 8601); backfilled records: absent. */
  time?: string;
}

export function metricsPath(runDir: string): string {
  return join(runDir, METRICS_FILE);
}

/** The distillation part of a loss, or nothing for a loss with no teacher term. */
export function distillationPart(
  loss: number,
  crossEntropy: number | undefined,
  labelWeight: number | null,
): number | undefined {
  return labelWeight === null || crossEntropy === undefined ? undefined : loss - labelWeight * crossEntropy;
}

/** An epoch record from a checkpoint's history (what `reconcile` writes back). */
export function epochRecord(
  subRun: string,
  h: EpochMetrics,
  stepsPerEpoch: number,
  labelWeight: number | null,
): MetricsRecord {
  const distillation = distillationPart(h.trainLoss, h.trainCrossEntropy, labelWeight);
  return {
    subRun,
    kind: "epoch",
    epoch: h.epoch,
    step: h.epoch * stepsPerEpoch,
    loss: h.trainLoss,
    ...(h.trainCrossEntropy !== undefined ? { crossEntropy: h.trainCrossEntropy } : {}),
    ...(distillation !== undefined ? { distillation } : {}),
    trainAccuracy: h.trainAccuracy,
    learningRate: h.learningRate,
    imagesPerSecond: h.imagesPerSecond,
    ...(h.valAccuracy !== undefined ? { valAccuracy: h.valAccuracy } : {}),
    ...(h.valLoss !== undefined ? { valLoss: h.valLoss } : {}),
    ...(h.valMap !== undefined ? { valMap: h.valMap } : {}),
    ...(h.testAccuracy !== undefined ? { testAccuracy: h.testAccuracy } : {}),
    ...(h.testMap !== undefined ? { testMap: h.testMap } : {}),
  };
}

function parseLine(line: string): MetricsRecord | null {
  try {
    const r = JSON.parse(line) as MetricsRecord;
    return r && typeof r.subRun === "string" && (r.kind === "step" || r.kind === "epoch") && Number.isInteger(r.step)
      ? r
      : null;
  } catch {
    return null;
  }
}

/** The records of a metrics file in file order; a torn or foreign line is skipped. Missing file: none. */
export function readMetrics(path: string): MetricsRecord[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8");
  const whole = text.endsWith("\n") ? text : text.slice(0, text.lastIndexOf("\n") + 1); // a torn last line
  return whole.split("\n").flatMap((l) => (l ? [parseLine(l)].filter((r): r is MetricsRecord => r !== null) : []));
}

const toLines = (records: MetricsRecord[]) => records.map((r) => `${JSON.stringify(r)}\n`).join("");

/** Step records before the epoch record of the same step. */
const order = (a: MetricsRecord, b: MetricsRecord) =>
  a.step - b.step || (a.kind === b.kind ? 0 : a.kind === "step" ? -1 : 1);

/**
 * The records of `subRun` that agree with its checkpoint (none: the sub-run starts afresh): those up
 * to its step, plus epoch records of its history that are missing; other sub-runs' records as they are.
 */
export function reconciled(
  records: MetricsRecord[],
  subRun: string,
  meta: CheckpointMeta | null,
  stepsPerEpoch: number,
  labelWeight: number | null,
): MetricsRecord[] {
  const mine = records.filter((r) => r.subRun === subRun && meta !== null && r.step <= meta.step);
  const logged = new Set(mine.filter((r) => r.kind === "epoch").map((r) => r.epoch));
  for (const h of meta?.history ?? [])
    if (!logged.has(h.epoch)) mine.push(epochRecord(subRun, h, stepsPerEpoch, labelWeight));
  mine.sort(order);
  // In place of its first record (everything before that belongs to other sub-runs), else at the end.
  const first = records.findIndex((r) => r.subRun === subRun);
  const others = records.filter((r) => r.subRun !== subRun);
  const at = first < 0 ? others.length : first;
  return [...others.slice(0, at), ...mine, ...others.slice(at)];
}

/** Appends whole lines to a run's metrics.jsonl, shared with other processes training the same run. */
export class MetricsLog {
  readonly path: string;

  constructor(runDir: string) {
    this.path = metricsPath(runDir);
  }

  /** Makes the file agree with `subRun`'s checkpoint before it trains (or is skipped as done). */
  reconcile(subRun: string, meta: CheckpointMeta | null, stepsPerEpoch: number, labelWeight: number | null): void {
    withFileLock(this.path, () => {
      const exists = existsSync(this.path);
      const before = exists ? readFileSync(this.path, "utf8") : "";
      const after = toLines(reconciled(readMetrics(this.path), subRun, meta, stepsPerEpoch, labelWeight));
      if (after !== before && (exists || after)) writeFileAtomic(this.path, after);
    });
  }

  append(record: MetricsRecord): void {
    const line = Buffer.from(`${JSON.stringify(record)}\n`, "utf8");
    withFileLock(this.path, () => {
      const fd = openSync(this.path, "a+");
      try {
        cutTornTail(fd);
        writeSync(fd, line); // one write of the whole line
      } finally {
        closeSync(fd);
      }
    });
  }
}

/** Cuts a last line without its newline (a writer killed mid-line) so the next line starts whole. */
function cutTornTail(fd: number): void {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  if (last[0] === 0x0a) return;
  const chunk = Buffer.alloc(Math.min(size, 1 << 16));
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - chunk.length);
    readSync(fd, chunk, 0, end - start, start);
    const nl = chunk.subarray(0, end - start).lastIndexOf(0x0a);
    if (nl >= 0) {
      ftruncateSync(fd, start + nl + 1);
      return;
    }
    end = start;
  }
  ftruncateSync(fd, 0);
}
