// The README's results table, generated from models/manifest.json (never typed by hand): it sits
// between the RESULTS_BEGIN and RESULTS_END markers; with it, the "At the edge" table from edge.json
// (scripts/edge-table.ts) where the README has its markers. `npm run export` regenerates both; by hand:
//   npx tsx scripts/results-table.ts [models/manifest.json] [README.md] [docs/bench/edge.json]
// The in-Worker latency column comes from `npm run bench -- --out docs/bench` (edge.json), and only
// for files whose sha256 the bench measured: a retrained model shows no stale figure.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Manifest, type ModelEntry, parseManifest } from "../models/schema.ts";
import { writeFileAtomic } from "../training/io/atomic.ts";
import { spread } from "../training/train/report.ts";
import { EDGE_BEGIN, EDGE_END, type EdgeBench, renderEdgeTable } from "./edge-table.ts";

export type { EdgeBench };

export const RESULTS_BEGIN = "<!-- results:begin (generated from models/manifest.json by scripts/results-table.ts) -->";
export const RESULTS_END = "<!-- results:end -->";
/** Where `npm run bench -- --out docs/bench` leaves its figures for this table. */
export const EDGE_FILE = "docs/bench/edge.json";

/** Reads an edge.json; undefined when there is none (never benchmarked). */
export function readEdgeBench(path: string): EdgeBench | undefined {
  if (!existsSync(path)) return undefined;
  const bench = JSON.parse(readFileSync(path, "utf8")) as EdgeBench;
  if (typeof bench.date !== "string" || !Array.isArray(bench.models))
    throw new Error(`${path}: not an edge.json written by npm run bench`);
  return bench;
}

/** In-Worker inference mean (ms) of the file with this sha256, as the bench measured it. */
function inWorker(m: ModelEntry, bench: EdgeBench | undefined): string {
  const hit = bench?.models.find((b) => b.sha256 === m.sha256);
  return hit ? hit.inWorkerInference.mean.toFixed(2) : "";
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const millions = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`);

function training(m: ModelEntry): string {
  const t = m.training ?? {};
  const loss = t.loss as { name?: string; options?: Record<string, unknown> } | undefined;
  const images = typeof t.trainSamples === "number" ? ` on ${t.trainSamples.toLocaleString("en-US")} images` : "";
  const epochs = typeof t.epochs === "number" ? `, ${t.epochs} epoch${t.epochs === 1 ? "" : "s"}${images}` : "";
  if (!loss?.name) return `?${epochs}`;
  const o = loss.options ?? {};
  if (loss.name === "ce" || o.alpha === 0) return `labels only (CE)${epochs}`;
  const opts = Object.entries(o).map(([k, v]) => `${k === "temperature" ? "T" : k === "alpha" ? "α" : k}=${String(v)}`);
  return `${loss.name.toUpperCase()}${opts.length ? ` ${opts.join(" ")}` : ""}${epochs}`;
}

/** What must match for a KD student and a baseline to be compared. */
const SAME_SETUP = ["widthScale", "epochs", "trainSamples"] as const;

const signed = (points: number) => `${points >= 0 ? "+" : ""}${points.toFixed(2)}`;

/**
 * KD student minus its label-only baseline (same architecture and training setup), in points of
 * top-1: paired by seed, mean ± sd, when both were trained over the same seeds; else the one difference.
 */
function gain(m: ModelEntry, all: ModelEntry[]): string {
  if (m.role !== "student" || m.name.endsWith("-baseline") || m.quantization) return "";
  const base = all.find((b) => b.name === `${m.architecture}-baseline`);
  if (!base || SAME_SETUP.some((k) => m.training?.[k] !== base.training?.[k])) return "";
  const [kd, ce] = [m.metrics.accuracy?.seeds?.bySeed, base.metrics.accuracy?.seeds?.bySeed];
  if (kd && ce) {
    const paired = Object.keys(kd)
      .filter((s) => s in ce)
      .map((s) => kd[s]! - ce[s]!);
    if (paired.length > 1) {
      const { mean, sd } = spread(paired)!;
      return `${signed(100 * mean)} ± ${(100 * sd).toFixed(2)} (${paired.length} seeds)`;
    }
  }
  const [a, b] = [m.metrics.accuracy?.top1, base?.metrics.accuracy?.top1];
  if (a === undefined || b === undefined) return "";
  return signed((a - b) * 100);
}

/** Test top-1 over seeds, "mean ± sd (n)", in percent; empty for a model trained once. */
function overSeeds(m: ModelEntry): string {
  const s = m.metrics.accuracy?.seeds;
  if (!s) return "";
  return `${(100 * s.mean).toFixed(2)}${s.n > 1 ? ` ± ${(100 * s.sd).toFixed(2)}` : ""} (${s.n})`;
}

/** The table (Markdown) for a manifest. */
export function renderResultsTable(manifest: Manifest, bench?: EdgeBench): string {
  if (manifest.models.length === 0) return "_No models exported yet: run `npm run distill`, which exports at its end._";
  const rows = manifest.models.map((m) => {
    const acc = m.metrics.accuracy;
    const name = m.name === manifest.defaultStudent ? `**${m.name}** (default)` : m.name;
    return [
      name,
      m.role,
      typeof m.training?.widthScale === "number" && m.training.widthScale !== 1
        ? `${m.architecture} ×${m.training.widthScale}`
        : m.architecture,
      millions(m.metrics.params),
      millions(m.metrics.macs),
      acc ? pct(acc.top1) : "n/a",
      overSeeds(m),
      gain(m, manifest.models),
      inWorker(m, bench),
      m.quantization
        ? `int8 of ${m.quantization.twin} (${m.quantization.calibration.method}, ${m.quantization.calibration.samples} ${m.quantization.calibration.split} images)`
        : training(m),
      m.quantization
        ? `${(100 * m.quantization.relativeLogitError).toFixed(1)}% (vs fp32)`
        : m.export
          ? m.export.maxAbsLogitDiff.toExponential(1)
          : "n/a",
      `${(m.bytes / 1024).toFixed(0)} KiB`,
      `\`${m.version}\``,
    ];
  });
  const datasets = [
    ...new Set(
      manifest.models
        .map((m) =>
          m.metrics.accuracy
            ? `${m.metrics.accuracy.dataset} ${m.metrics.accuracy.split} split, ${m.metrics.accuracy.samples} images`
            : "",
        )
        .filter(Boolean),
    ),
  ];
  const header = [
    "model",
    "role",
    "architecture",
    "params",
    "MACs/image",
    "top-1 (this file)",
    "top-1 over seeds (%)",
    "KD gain (points)",
    "in-Worker (ms)",
    "training",
    "max abs logit diff (tfjs vs ONNX)",
    "ONNX size",
    "version (run)",
  ];
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i >= 3 && i <= 8 ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
    `Top-1 (this file) is measured by onnxruntime-node on the exported ONNX files themselves (${datasets.join("; ")}). ` +
      "Over seeds: the training loop's test top-1 of every seed the model was trained with, mean ± sample sd (seeds); the file shipped is the seed closest to the mean. " +
      "KD gain: the distilled student minus the same architecture trained on labels only with the same width, epochs and training images, paired by seed. " +
      (bench
        ? `In-Worker: the mean of the Worker's Server-Timing inference at c=1, measured by \`${bench.command}\` on ${bench.date.slice(0, 10)} (docs/benchmarks.md), shown only for the very files measured (same sha256). `
        : "") +
      "The logit difference is the export check's largest deviation from the tfjs model; for an int8 variant, its mean logit difference from its fp32 twin relative to the twin's mean logit (docs/int8.md).",
  ].join("\n");
}

/** `text` with what lies between `begin` and `end` replaced; undefined when the markers are missing. */
function between(text: string, begin: string, end: string, content: string): string | undefined {
  const b = text.indexOf(begin);
  const e = text.indexOf(end);
  if (b < 0 || e < b) return undefined;
  return `${text.slice(0, b + begin.length)}\n${content}\n${text.slice(e)}`;
}

/**
 * Replaces the text between the results markers in `readme` with the table for `manifest`, and,
 * when the README has edge markers and there is a bench, the edge table.
 */
export function updateResultsTable(
  readmePath: string,
  manifest: Manifest,
  bench = readEdgeBench(resolve(readmePath, "..", EDGE_FILE)),
): void {
  const text = readFileSync(readmePath, "utf8");
  let next = between(text, RESULTS_BEGIN, RESULTS_END, renderResultsTable(manifest, bench));
  if (next === undefined)
    throw new Error(`${readmePath}: no results table markers (${RESULTS_BEGIN} ... ${RESULTS_END})`);
  if (bench)
    next =
      between(next, EDGE_BEGIN, EDGE_END, renderEdgeTable(bench, new Set(manifest.models.map((m) => m.sha256)))) ??
      next;
  if (next !== text) writeFileAtomic(readmePath, next);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [manifestPath = "models/manifest.json", readme = "README.md", edge = EDGE_FILE] = process.argv.slice(2);
  try {
    updateResultsTable(readme, parseManifest(JSON.parse(readFileSync(manifestPath, "utf8"))), readEdgeBench(edge));
    console.log(`results-table: ${readme} regenerated from ${manifestPath}`);
  } catch (err) {
    console.error(`results-table: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
