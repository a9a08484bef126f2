// The run's report: one row per trained model, as report.json (for tools) and report.md (for people).
import { countMacs, countParams } from "../model/graph.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import type { Checkpoint } from "./checkpoint.ts";
import { formatDuration } from "./progress.ts";
import { join } from "node:path";

export interface ModelReport {
  name: string;
  role: "teacher" | "student";
  architecture: string;
  widthScale: number;
  loss: { name: string; options: Record<string, unknown> };
  params: number;
  macs: number;
  epochs: number;
  done: boolean;
  /** Fractions in [0, 1]; null before the first epoch ends. */
  bestTestAccuracy: number | null;
  lastTestAccuracy: number | null;
  bestValAccuracy: number | null;
  seed: number;
  backend: string;
  device: string;
  /** Training images per second, over all epochs (evaluation excluded). */
  imagesPerSecond: number | null;
  wallSeconds: number;
  /** For KD students: what computed the teacher's soft targets. */
  teacherEngine?: string;
}

export interface RunReport {
  run: string;
  preset: string;
  dataset: Checkpoint["meta"]["dataset"];
  models: ModelReport[];
  /** KD student minus its baseline, test accuracy (last epoch), per student architecture with both. */
  kdGain: Record<string, number>;
  generatedAt: string;
}

export function modelReport(ckpt: Checkpoint): ModelReport {
  const { meta, graph } = ckpt;
  const tests = meta.history.map((h) => h.testAccuracy);
  const vals = meta.history.flatMap((h) => (h.valAccuracy === undefined ? [] : [h.valAccuracy]));
  // Images/s over the whole run: images seen / training seconds, from each epoch's rate and size.
  const imagesPerEpoch = meta.dataset.trainSamples - (meta.dataset.trainSamples % Number(meta.config.batchSize ?? 1));
  const trainSeconds = meta.history.reduce((s, h) => s + imagesPerEpoch / h.imagesPerSecond, 0);
  return {
    name: meta.name,
    role: meta.role,
    architecture: meta.architecture,
    widthScale: meta.widthScale,
    loss: meta.loss,
    params: countParams(graph),
    macs: countMacs(graph),
    epochs: meta.epoch,
    done: meta.done,
    bestTestAccuracy: tests.length ? Math.max(...tests) : null,
    lastTestAccuracy: tests.at(-1) ?? null,
    bestValAccuracy: vals.length ? Math.max(...vals) : null,
    seed: Number(meta.config.seed),
    backend: meta.engine.backend,
    device: meta.engine.device,
    imagesPerSecond: trainSeconds > 0 ? (imagesPerEpoch * meta.history.length) / trainSeconds : null,
    wallSeconds: meta.wallSeconds,
    ...(meta.teacher ? { teacherEngine: meta.teacher.engine } : {}),
  };
}

const pct = (v: number | null) => (v === null ? "–" : `${(100 * v).toFixed(2)}%`);
const human = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n));

export function kdGain(models: ModelReport[]): Record<string, number> {
  const gain: Record<string, number> = {};
  for (const kd of models.filter((m) => m.role === "student" && m.loss.name !== "ce")) {
    const base = models.find((m) => m.architecture === kd.architecture && m.loss.name === "ce");
    if (base && kd.lastTestAccuracy !== null && base.lastTestAccuracy !== null) gain[kd.architecture] = kd.lastTestAccuracy - base.lastTestAccuracy;
  }
  return gain;
}

export function reportMarkdown(r: RunReport): string {
  const lines = [
    `# Run ${r.run}`,
    "",
    `Preset \`${r.preset}\` on ${r.dataset.name}: ${r.dataset.trainSamples} training, ${r.dataset.valSamples} validation, ${r.dataset.testSamples} test images. Generated ${r.generatedAt}.`,
    "",
    "| model | role | architecture | loss | params | MACs | best test | last test | best val | epochs | seed | backend | device | img/s | wall time |",
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ...r.models.map((m) => {
      const loss = m.loss.name === "kd" ? `kd (T=${m.loss.options.temperature}, alpha=${m.loss.options.alpha})` : m.loss.name;
      return `| ${m.name} | ${m.role} | ${m.architecture} x${m.widthScale} | ${loss} | ${human(m.params)} | ${human(m.macs)} | ${pct(m.bestTestAccuracy)} | ${pct(m.lastTestAccuracy)} | ${pct(m.bestValAccuracy)} | ${m.epochs}${m.done ? "" : " (unfinished)"} | ${m.seed} | ${m.backend} | ${m.device} | ${m.imagesPerSecond === null ? "–" : m.imagesPerSecond.toFixed(0)} | ${formatDuration(m.wallSeconds)} |`;
    }),
  ];
  const gains = Object.entries(r.kdGain);
  if (gains.length) {
    lines.push("", "KD gain (last-epoch test accuracy of the KD student minus its baseline):", "");
    for (const [arch, g] of gains) lines.push(`- ${arch}: ${g >= 0 ? "+" : ""}${(100 * g).toFixed(2)} points`);
  }
  return lines.join("\n") + "\n";
}

export function writeReport(runDir: string, r: RunReport): void {
  writeJsonAtomic(join(runDir, "report.json"), r);
  writeFileAtomic(join(runDir, "report.md"), reportMarkdown(r));
}
