// The run's report: one row per trained model, and, over the seeds, each architecture's mean ± sd and
// the paired KD - baseline difference, as report.json (for tools) and report.md (for people).
//
// Model selection is honest by construction: the test split is measured once, after the last epoch
// (loop.ts), and that is the accuracy reported; validation accuracy is shown beside it.
import { countMacs, countParams } from "../model/graph.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";
import type { Checkpoint } from "./checkpoint.ts";
import type { ModelIdentity } from "./identity.ts";
import { formatDuration } from "./progress.ts";
import { join } from "node:path";
import os from "node:os";

export interface ModelReport extends ModelIdentity {
  params: number;
  macs: number;
  epochs: number;
  done: boolean;
  /** Test accuracy of the last epoch's model (fraction); null before the run ends. */
  testAccuracy: number | null;
  /** Multi-label data: the last epoch's test mean average precision. */
  testMap?: number;
  /** Validation accuracy of the last epoch, and the best epoch by validation (for the record). */
  valAccuracy: number | null;
  bestValAccuracy: number | null;
  bestValEpoch: number | null;
  /** The last epoch's training cross-entropy with the labels (KD's hard part), comparable across losses. */
  trainCrossEntropy: number | null;
  seed: number;
  backend: string;
  device: string;
  /** Training images per wall-clock second, over all epochs (evaluation excluded). */
  imagesPerSecond: number | null;
  wallSeconds: number;
  /** For KD students: what computed the teacher's soft targets. */
  teacherEngine?: string;
}

/** Mean, sample standard deviation and count of a list of accuracies (fractions). */
export interface Spread {
  mean: number;
  sd: number;
  n: number;
}

/** One architecture and distillation method over the seeds that have finished both its student and its baseline. */
export interface ArchitectureSummary {
  architecture: string;
  /** The distillation method (loss) of the "kd" figures: kd, dkd, at, ... */
  method?: string;
  params: number;
  macs: number;
  kd: Spread | null;
  baseline: Spread | null;
  /** KD minus baseline of the same seed, over the seeds with both. */
  kdGain: (Spread & { bySeed: Record<string, number> }) | null;
}

export interface RunReport {
  run: string;
  preset: string;
  dataset: Checkpoint["meta"]["dataset"];
  models: ModelReport[];
  /** Per student architecture, over seeds. */
  architectures: ArchitectureSummary[];
  /** Mean KD gain (test accuracy, last epoch) per student architecture with both (kept for tools). */
  kdGain: Record<string, number>;
  /** Wall-clock training and evaluation seconds of every model of the run, summed (resumes included). */
  computeSeconds: number;
  /** The machine that wrote the report (each model's device string says how it trained). */
  machine: { cores: number; cpu: string };
  generatedAt: string;
}

export function modelReport(ckpt: Checkpoint): ModelReport {
  const { meta, graph } = ckpt;
  const last = meta.history.at(-1);
  let best: { acc: number; epoch: number } | null = null;
  for (const h of meta.history)
    if (h.valAccuracy !== undefined && (!best || h.valAccuracy > best.acc))
      best = { acc: h.valAccuracy, epoch: h.epoch };
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
    testAccuracy: meta.done ? (last?.testAccuracy ?? null) : null,
    ...(meta.done && last?.testMap !== undefined ? { testMap: last.testMap } : {}),
    valAccuracy: last?.valAccuracy ?? null,
    bestValAccuracy: best?.acc ?? null,
    bestValEpoch: best?.epoch ?? null,
    trainCrossEntropy: last?.trainCrossEntropy ?? null,
    seed: Number(meta.config.seed),
    backend: meta.engine.backend,
    device: meta.engine.device,
    imagesPerSecond: trainSeconds > 0 ? (imagesPerEpoch * meta.history.length) / trainSeconds : null,
    wallSeconds: meta.wallSeconds,
    ...(meta.teacher ? { teacherEngine: meta.teacher.engine } : {}),
  };
}

export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, sd, n: values.length };
}

/** Trained on the labels alone: the baseline of its architecture. */
export const isBaseline = (m: Pick<ModelReport, "loss">) =>
  m.loss.name === "ce" || m.loss.name === "bce" || (m.loss.name === "kd" && m.loss.options.alpha === 0);

/** Per student architecture and distillation method: student and baseline over their finished seeds, and the paired gain. */
export function summarize(models: ModelReport[]): ArchitectureSummary[] {
  const students = models.filter((m) => m.role === "student" && m.testAccuracy !== null);
  const archs = [...new Set(students.map((m) => m.architecture))];
  // One row per method an architecture was distilled with (one row when it has only baselines).
  const pairs = archs.flatMap((architecture) => {
    const methods = [
      ...new Set(students.filter((m) => m.architecture === architecture && !isBaseline(m)).map((m) => m.loss.name)),
    ];
    return (methods.length ? methods : [undefined]).map((method) => ({ architecture, method }));
  });
  return pairs.map(({ architecture, method }) => {
    const mine = students.filter((m) => m.architecture === architecture);
    const kd = mine.filter((m) => !isBaseline(m) && m.loss.name === method);
    const base = mine.filter(isBaseline);
    const bySeed: Record<string, number> = {};
    for (const k of kd) {
      const b = base.find((m) => m.seed === k.seed);
      if (b) bySeed[String(k.seed)] = k.testAccuracy! - b.testAccuracy!;
    }
    const gain = spread(Object.values(bySeed));
    return {
      architecture,
      ...(method ? { method } : {}),
      params: mine[0]!.params,
      macs: mine[0]!.macs,
      kd: spread(kd.map((m) => m.testAccuracy!)),
      baseline: spread(base.map((m) => m.testAccuracy!)),
      kdGain: gain ? { ...gain, bySeed } : null,
    };
  });
}

export function buildReport(
  run: { run: string; preset: string; dataset: RunReport["dataset"] },
  models: ModelReport[],
): RunReport {
  const architectures = summarize(models);
  const kdGain = Object.fromEntries(
    architectures.flatMap((a) => (a.kdGain && a.method === "kd" ? [[a.architecture, a.kdGain.mean]] : [])),
  );
  const computeSeconds = models.reduce((s, m) => s + m.wallSeconds, 0);
  const machine = { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model.trim() ?? "unknown" };
  return { ...run, models, architectures, kdGain, computeSeconds, machine, generatedAt: new Date().toISOString() };
}

const pct = (v: number | null) => (v === null ? "–" : `${(100 * v).toFixed(2)}%`);
const human = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
/** "93.41 ± 0.12", mean ± sd in percent (points); one seed has no sd, so it shows the mean alone. */
export const pm = (s: Spread | null, signed = false) =>
  s === null
    ? "–"
    : `${signed && s.mean >= 0 ? "+" : ""}${(100 * s.mean).toFixed(2)}${s.n > 1 ? ` ± ${(100 * s.sd).toFixed(2)}` : ""}`;

/** "; teacher 10h56m, students 20h55m": where the compute went, when a run has both. */
function computeSplit(r: RunReport): string {
  const sum = (role: ModelReport["role"]) =>
    r.models.filter((m) => m.role === role).reduce((s, m) => s + m.wallSeconds, 0);
  const [teacher, students] = [sum("teacher"), sum("student")];
  return teacher > 0 && students > 0
    ? `; teacher ${formatDuration(teacher)}, students ${formatDuration(students)}`
    : "";
}

export function reportMarkdown(r: RunReport): string {
  const lines = [
    `# Run ${r.run}`,
    "",
    `Preset \`${r.preset}\` on ${r.dataset.name}: ${r.dataset.trainSamples} training, ${r.dataset.valSamples} validation, ${r.dataset.testSamples} test images. ` +
      `Compute: ${formatDuration(r.computeSeconds)} of training and evaluation (wall clock, summed over models and sessions; models trained side by side overlap${computeSplit(r)}), ` +
      `on a ${r.machine.cores}-core ${r.machine.cpu}; each model's device column says how many threads it used. Generated ${r.generatedAt}.`,
    "",
    "Test accuracy is measured once, on the last epoch's model; validation accuracy is the last epoch's (best epoch by validation in brackets).",
    "",
    "| model | role | architecture | loss | params | MACs | test | val (best) | train CE | epochs | seed | device | img/s | wall time |",
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ...r.models.map((m) => {
      const options = Object.entries(m.loss.options).map(([k, v]) => `${k}=${v}`);
      const loss =
        m.loss.name === "kd"
          ? `kd (T=${m.loss.options.temperature}, alpha=${m.loss.options.alpha})`
          : options.length
            ? `${m.loss.name} (${options.join(", ")})`
            : m.loss.name;
      const val = m.valAccuracy === null ? "–" : `${pct(m.valAccuracy)} (${pct(m.bestValAccuracy)} @${m.bestValEpoch})`;
      const test = m.testMap === undefined ? pct(m.testAccuracy) : `${pct(m.testAccuracy)} (mAP ${pct(m.testMap)})`;
      return `| ${m.name} | ${m.role} | ${m.architecture} x${m.widthScale} | ${loss} | ${human(m.params)} | ${human(m.macs)} | ${test} | ${val} | ${m.trainCrossEntropy === null ? "–" : m.trainCrossEntropy.toFixed(4)} | ${m.epochs}${m.done ? "" : " (unfinished)"} | ${m.seed} | ${m.backend}: ${m.device} | ${m.imagesPerSecond === null ? "–" : m.imagesPerSecond.toFixed(0)} | ${formatDuration(m.wallSeconds)} |`;
    }),
  ];
  if (r.architectures.length) {
    lines.push(
      "",
      "Per architecture and distillation method (kd unless named in brackets), over seeds (test accuracy in %, mean ± sample sd; KD gain = the distilled student minus the baseline of the same seed, in points):",
      "",
      "| architecture | params | MACs | KD student | baseline | KD gain | seeds | gain by seed |",
      "|---|---:|---:|---:|---:|---:|---:|---|",
      ...r.architectures.map((a) => {
        const seeds = Object.entries(a.kdGain?.bySeed ?? {}).map(
          ([s, g]) => `${s}: ${g >= 0 ? "+" : ""}${(100 * g).toFixed(2)}`,
        );
        return `| ${a.method && a.method !== "kd" ? `${a.architecture} (${a.method})` : a.architecture} | ${human(a.params)} | ${human(a.macs)} | ${pm(a.kd)} | ${pm(a.baseline)} | ${pm(a.kdGain, true)} | ${a.kdGain?.n ?? 0} | ${seeds.join(", ")} |`;
      }),
    );
  }
  return `${lines.join("\n")}\n`;
}

export function writeReport(runDir: string, r: RunReport): void {
  writeJsonAtomic(join(runDir, "report.json"), r);
  writeFileAtomic(join(runDir, "report.md"), reportMarkdown(r));
}
