// A run's curves, from its metrics: metrics.csv (every record of metrics.jsonl, one row each) and
// curves.svg (per epoch: training loss, training cross-entropy with the labels, validation accuracy
// or mAP; one line per sub-run, colored by architecture, dashed by method: distilled solid,
// baselines dashed). Runs without metrics.jsonl (older ones) get their epoch records from their
// checkpoints' history, as a resumed run would (metrics-log.ts); nothing here writes metrics.jsonl.
import { existsSync, readdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { createLoss } from "../losses/index.ts";
import { type CheckpointMeta, loadCheckpoint } from "./checkpoint.ts";
import { checkpointPath } from "./loop.ts";
import { type MetricsRecord, metricsPath, readMetrics, reconciled } from "./metrics-log.ts";
import { planSubRuns } from "./plan.ts";
import { isBaseline } from "./report.ts";
import { readRunFile } from "./run-dir.ts";

export interface SubRunCurves {
  name: string;
  architecture: string;
  /** The distillation method, or "baseline" (labels alone). */
  method: string;
  records: MetricsRecord[];
}

/**
 * The sub-runs of a run directory that have a checkpoint: in the run's plan order when it has one,
 * then any other sub-run folder (a run exported from checkpoints its config did not plan).
 */
function subRunMetas(runDir: string): CheckpointMeta[] {
  let planned: string[] = [];
  try {
    planned = planSubRuns(readRunFile(runDir).config).map((r) => r.name);
  } catch {
    // a run directory without a readable config.json: its folders alone
  }
  const names = [
    ...planned,
    ...readdirSync(runDir)
      .sort()
      .filter((n) => !planned.includes(n)),
  ];
  return names
    .filter((n) => existsSync(checkpointPath(join(runDir, n))))
    .map((n) => loadCheckpoint(checkpointPath(join(runDir, n))).meta);
}

/** Every sub-run's records: metrics.jsonl made to agree with the checkpoints (their history fills gaps). */
export function runCurves(runDir: string): SubRunCurves[] {
  const metas = subRunMetas(runDir);
  if (metas.length === 0)
    throw new Error(`${runDir}: no sub-run checkpoints here (<sub-run>/checkpoint.ndckpt), so no curves to draw`);
  let records = readMetrics(metricsPath(runDir));
  for (const meta of metas) {
    const loss = createLoss(meta.loss.name, meta.loss.options);
    const stepsPerEpoch = Math.floor(meta.dataset.trainSamples / Number(meta.config.batchSize));
    records = reconciled(records, meta.name, meta, stepsPerEpoch, loss.needsTeacher ? (loss.labelWeight ?? 1) : null);
  }
  return metas.map((m) => ({
    name: m.name,
    architecture: m.architecture,
    method: m.role === "teacher" ? "teacher" : isBaseline(m) ? "baseline" : m.loss.name,
    records: records.filter((r) => r.subRun === m.name),
  }));
}

const COLUMNS = [
  "subRun",
  "kind",
  "epoch",
  "step",
  "loss",
  "crossEntropy",
  "distillation",
  "trainAccuracy",
  "learningRate",
  "imagesPerSecond",
  "valAccuracy",
  "valLoss",
  "valMap",
  "testAccuracy",
  "testMap",
  "time",
] as const;

/** One row per record, sub-run by sub-run; an absent field is an empty cell. */
export function metricsCsv(runs: SubRunCurves[]): string {
  const cell = (v: unknown) =>
    v === undefined ? "" : typeof v === "string" && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v);
  const rows = runs.flatMap((r) => r.records.map((rec) => COLUMNS.map((c) => cell(rec[c])).join(",")));
  return `${[COLUMNS.join(","), ...rows].join("\n")}\n`;
}

// --- the SVG ---

const PALETTE: Record<string, string> = {
  teacher: "#222222",
  unmodified: "#1f77b4",
  wide: "#d62728",
  "narrow-deep": "#2ca02c",
};
const EXTRA_COLORS = ["#9467bd", "#ff7f0e", "#8c564b", "#17becf"];
/** Distilled students solid, baselines dashed; other methods their own dashes. */
const DASHES: Record<string, string> = { teacher: "", kd: "", mlkd: "", baseline: "7 4", dkd: "10 3 2 3", at: "2 3" };

interface Panel {
  title: string;
  value: (r: MetricsRecord) => number | undefined;
  log?: boolean;
  percent?: boolean;
  /** The first epoch shown (a zoom on the end of training); default 1. */
  fromEpoch?: number;
}

const PANEL_W = 300;
const PANEL_H = 260;
const MARGIN = { left: 52, right: 12, top: 28, bottom: 42 };

/** Round tick values covering [lo, hi]: about five on a linear axis, 1-2-5 steps on a log one. */
function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of [1, 2, 5]) if (m * 10 ** e >= lo && m * 10 ** e <= hi) out.push(m * 10 ** e);
    return out.length >= 2 ? out : [lo, hi];
  }
  const raw = (hi - lo) / 5 || 1;
  const step = [1, 2, 2.5, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const fmt = (v: number, percent?: boolean) =>
  percent ? `${Number((100 * v).toPrecision(4))}%` : String(Number(v.toPrecision(3)));

function panelSvg(
  p: Panel,
  runs: SubRunCurves[],
  style: (r: SubRunCurves) => { color: string; dash: string },
  x0: number,
): string {
  const first = p.fromEpoch ?? 1;
  const series = runs
    .map((r) => ({
      run: r,
      points: r.records
        .filter((rec) => rec.kind === "epoch" && rec.epoch >= first && p.value(rec) !== undefined)
        .map((rec) => [rec.epoch, p.value(rec)!] as const),
    }))
    .filter((s) => s.points.length);
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const out = [
    `<g transform="translate(${x0},0)">`,
    `<text x="${MARGIN.left + w / 2}" y="18" text-anchor="middle" font-weight="bold">${p.title}</text>`,
  ];
  if (!series.length)
    return [
      ...out,
      `<text x="${MARGIN.left + w / 2}" y="${MARGIN.top + h / 2}" text-anchor="middle">(not measured)</text>`,
      "</g>",
    ].join("\n");
  const all = series.flatMap((s) => s.points);
  const maxEpoch = Math.max(...all.map(([e]) => e));
  let lo = Math.min(...all.map(([, v]) => v));
  let hi = Math.max(...all.map(([, v]) => v));
  if (p.log) [lo, hi] = [lo / 1.08, hi * 1.08];
  else [lo, hi] = lo === hi ? [lo - 0.01, hi + 0.01] : [lo - (hi - lo) * 0.04, hi + (hi - lo) * 0.04];
  const sx = (e: number) => MARGIN.left + (maxEpoch === first ? w / 2 : ((e - first) / (maxEpoch - first)) * w);
  const sy = (v: number) =>
    MARGIN.top + h - (p.log ? (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) : (v - lo) / (hi - lo)) * h;
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  for (const t of ticks(lo, hi, Boolean(p.log))) {
    const y = sy(t).toFixed(1);
    out.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + w}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`,
      `<text x="${MARGIN.left - 4}" y="${y}" dy="0.32em" text-anchor="end">${fmt(t, p.percent)}</text>`,
    );
  }
  for (const t of ticks(first, maxEpoch, false).filter(Number.isInteger))
    out.push(`<text x="${sx(t).toFixed(1)}" y="${MARGIN.top + h + 14}" text-anchor="middle">${t}</text>`);
  out.push(`<text x="${MARGIN.left + w / 2}" y="${MARGIN.top + h + 30}" text-anchor="middle">epoch</text>`);
  for (const s of series) {
    const { color, dash } = style(s.run);
    const pts = s.points.map(([e, v]) => `${sx(e).toFixed(1)},${sy(v).toFixed(1)}`).join(" ");
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="1.4"${dash ? ` stroke-dasharray="${dash}"` : ""} points="${pts}"><title>${escapeXml(s.run.name)}</title></polyline>`,
    );
  }
  return [...out, "</g>"].join("\n");
}

/** The run's curves as one SVG: a panel per figure and a legend of architecture x method. */
export function curvesSvg(runs: SubRunCurves[], title: string): string {
  const archs = [...new Set(runs.map((r) => r.architecture))];
  const color = (a: string) =>
    PALETTE[a] ?? EXTRA_COLORS[archs.filter((x) => !PALETTE[x]).indexOf(a) % EXTRA_COLORS.length]!;
  const style = (r: SubRunCurves) => ({ color: color(r.architecture), dash: DASHES[r.method] ?? "4 2 1 2" });
  const multiLabel = runs.some((r) => r.records.some((rec) => rec.valMap !== undefined));
  const validation: Panel = multiLabel
    ? { title: "validation mAP", value: (r) => r.valMap, percent: true }
    : { title: "validation accuracy", value: (r) => r.valAccuracy, percent: true };
  const maxEpoch = Math.max(...runs.flatMap((r) => r.records.map((rec) => rec.epoch)));
  // Early epochs span tens of points; the last half, where the methods part, gets a panel of its own.
  const zoomFrom = Math.ceil(maxEpoch / 2);
  const panels: Panel[] = [
    { title: "training loss (log scale)", value: (r) => r.loss, log: true },
    { title: "training cross-entropy with the labels", value: (r) => r.crossEntropy },
    validation,
    ...(maxEpoch >= 4
      ? [{ ...validation, title: `${validation.title}, epochs ${zoomFrom}-${maxEpoch}`, fromEpoch: zoomFrom }]
      : []),
  ];
  // The legend: a row per architecture, an entry per method (with how many runs share the style).
  const methods = [...new Set(runs.map((r) => r.method))];
  const legendRows = archs.map((a) =>
    methods.flatMap((m) => {
      const same = runs.filter((r) => r.architecture === a && r.method === m);
      return same.length
        ? [{ run: same[0]!, label: `${a === m ? a : `${a} ${m}`}${same.length > 1 ? ` (${same.length} runs)` : ""}` }]
        : [];
    }),
  );
  const width = PANEL_W * panels.length;
  const height = PANEL_H + 24 + legendRows.length * 18;
  const legend = legendRows.flatMap((row, j) =>
    row.map(({ run, label }, i) => {
      const { color: c, dash } = style(run);
      const x = 60 + i * 280;
      const y = PANEL_H + 12 + j * 18;
      return `<line x1="${x}" x2="${x + 34}" y1="${y}" y2="${y}" stroke="${c}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ""}/><text x="${x + 42}" y="${y}" dy="0.32em">${escapeXml(label)}</text>`;
    }),
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...panels.map((p, i) => panelSvg(p, runs, style, i * PANEL_W)),
    ...legend,
    "</svg>",
    "",
  ].join("\n");
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Writes metrics.csv and curves.svg into `outDir` (default: the run directory); returns their paths. */
export function writeCurves(
  runDir: string,
  outDir = runDir,
  title = `Run ${basename(resolve(runDir))}`,
): { csv: string; svg: string } {
  const runs = runCurves(runDir);
  const csv = join(outDir, "metrics.csv");
  const svg = join(outDir, "curves.svg");
  writeFileAtomic(csv, metricsCsv(runs));
  writeFileAtomic(svg, curvesSvg(runs, title));
  return { csv, svg };
}
