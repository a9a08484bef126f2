// The README's plot: test accuracy against MACs per image for the teacher and every student, KD and
// baseline marked apart, error bars of one sample sd over seeds. Generated from models/manifest.json
// as a plain SVG (no charting dependency for one static figure); `npm run export` regenerates it, by hand:
//   npx tsx scripts/accuracy-plot.ts [models/manifest.json] [docs/accuracy-vs-macs.svg]
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Manifest, type ModelEntry, parseManifest } from "../models/schema.ts";
import { writeFileAtomic } from "../training/io/atomic.ts";

export const PLOT_FILE = "docs/accuracy-vs-macs.svg";

const W = 720;
const H = 440;
const M = { left: 64, right: 200, top: 40, bottom: 56 };
const COLORS = ["#1b6ca8", "#d1495b", "#2e8b57", "#8e44ad", "#e67e22", "#16a085"];
/** KD and baseline of one architecture share their MACs: drawn this many pixels apart. */
const PAIR_OFFSET = 7;

interface Point {
  name: string;
  architecture: string;
  kind: "teacher" | "kd" | "baseline";
  macs: number;
  /** Percent: mean over seeds when known, else this file's top-1. */
  accuracy: number;
  sd: number;
  seeds: number;
}

function point(m: ModelEntry): Point | null {
  const acc = m.metrics.accuracy;
  if (!acc) return null;
  const s = acc.seeds;
  const kind = m.role === "teacher" ? "teacher" : m.name.endsWith("-baseline") ? "baseline" : "kd";
  return {
    name: m.name,
    architecture: m.architecture,
    kind,
    macs: m.metrics.macs,
    accuracy: 100 * (s?.mean ?? acc.top1),
    sd: 100 * (s?.sd ?? 0),
    seeds: s?.n ?? 1,
  };
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (v: number) => v.toFixed(1);

/** "Nice" tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / count;
  const step = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10].find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.round(v * 1000) / 1000);
  return out;
}

export function renderAccuracyPlot(manifest: Manifest): string {
  // int8 variants share their fp32 twin's MACs and accuracy to a tenth of a point: the table lists them.
  const points = manifest.models
    .filter((m) => !m.quantization)
    .map(point)
    .filter((p): p is Point => p !== null);
  if (points.length === 0) throw new Error("no model in the manifest has a test accuracy to plot");
  const archs = [...new Set(points.filter((p) => p.kind !== "teacher").map((p) => p.architecture))];
  const color = (p: Point) => (p.kind === "teacher" ? "#333" : COLORS[archs.indexOf(p.architecture) % COLORS.length]!);

  const logs = points.map((p) => Math.log10(p.macs));
  const [x0, x1] = [Math.min(...logs) - 0.15, Math.max(...logs) + 0.15];
  const lows = points.map((p) => p.accuracy - p.sd);
  const highs = points.map((p) => p.accuracy + p.sd);
  const [y0, y1] = [Math.floor(Math.min(...lows) * 2 - 0.5) / 2, Math.ceil(Math.max(...highs) * 2 + 0.5) / 2];
  const px = (macs: number) => M.left + ((Math.log10(macs) - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (acc: number) => H - M.bottom - ((acc - y0) / (y1 - y0)) * (H - M.top - M.bottom);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${M.left}" y="22" font-size="14" font-weight="bold">Test accuracy against compute (${esc(manifest.models.find((m) => m.metrics.accuracy)!.metrics.accuracy!.dataset)})</text>`,
  ];
  // Axes, grid and ticks: x in MACs per image (log scale), y in percent.
  const plotBottom = H - M.bottom;
  for (const t of ticks(y0, y1, 6)) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${fmt(py(t))}" y2="${fmt(py(t))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 8}" y="${fmt(py(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  for (let e = Math.floor(x0); e <= Math.ceil(x1); e++) {
    for (const mult of [1, 2, 3, 5]) {
      const v = mult * 10 ** e;
      const lv = Math.log10(v);
      if (lv < x0 || lv > x1) continue;
      out.push(`<line x1="${fmt(px(v))}" x2="${fmt(px(v))}" y1="${M.top}" y2="${plotBottom}" stroke="#e5e5e5"/>`);
      out.push(
        `<text x="${fmt(px(v))}" y="${plotBottom + 18}" text-anchor="middle">${v >= 1e6 ? `${v / 1e6}M` : `${v / 1e3}k`}</text>`,
      );
    }
  }
  out.push(
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${plotBottom - M.top}" fill="none" stroke="#999"/>`,
  );
  out.push(
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 14}" text-anchor="middle">MACs per image (log scale)</text>`,
  );
  out.push(
    `<text transform="translate(18 ${(M.top + plotBottom) / 2}) rotate(-90)" text-anchor="middle">test top-1 (%)</text>`,
  );

  for (const p of points) {
    const x = px(p.macs) + (p.kind === "kd" ? PAIR_OFFSET / 2 : p.kind === "baseline" ? -PAIR_OFFSET / 2 : 0);
    const y = py(p.accuracy);
    const c = color(p);
    const title = `<title>${esc(p.name)}: ${p.accuracy.toFixed(2)}%${p.seeds > 1 ? ` ± ${p.sd.toFixed(2)} over ${p.seeds} seeds` : ""}, ${(p.macs / 1e6).toFixed(2)}M MACs</title>`;
    if (p.sd > 0) {
      const [ya, yb] = [py(p.accuracy - p.sd), py(p.accuracy + p.sd)];
      out.push(
        `<g class="errorbar" stroke="${c}"><line x1="${fmt(x)}" x2="${fmt(x)}" y1="${fmt(ya)}" y2="${fmt(yb)}"/><line x1="${fmt(x - 3)}" x2="${fmt(x + 3)}" y1="${fmt(ya)}" y2="${fmt(ya)}"/><line x1="${fmt(x - 3)}" x2="${fmt(x + 3)}" y1="${fmt(yb)}" y2="${fmt(yb)}"/></g>`,
      );
    }
    if (p.kind === "teacher")
      out.push(
        `<rect class="teacher" x="${fmt(x - 5)}" y="${fmt(y - 5)}" width="10" height="10" fill="${c}">${title}</rect>`,
      );
    else
      out.push(
        `<circle class="${p.kind}" cx="${fmt(x)}" cy="${fmt(y)}" r="4.5" fill="${p.kind === "kd" ? c : "#fff"}" stroke="${c}" stroke-width="2">${title}</circle>`,
      );
    if (p.kind === "teacher")
      out.push(`<text x="${fmt(x - 9)}" y="${fmt(y + 4)}" text-anchor="end">teacher ${p.accuracy.toFixed(2)}%</text>`);
  }

  // Legend: one row per student architecture with its KD and baseline figures, then the markers.
  const lx = W - M.right + 16;
  let ly = M.top + 8;
  for (const arch of archs) {
    const kd = points.find((p) => p.architecture === arch && p.kind === "kd");
    const base = points.find((p) => p.architecture === arch && p.kind === "baseline");
    const c = COLORS[archs.indexOf(arch) % COLORS.length]!;
    out.push(`<text x="${lx}" y="${ly}" fill="${c}" font-weight="bold">${esc(arch)}</text>`);
    for (const p of [kd, base]) {
      if (!p) continue;
      ly += 16;
      out.push(
        `<text x="${lx + 8}" y="${ly}">${p.kind === "kd" ? "KD" : "baseline"} ${p.accuracy.toFixed(2)}${p.seeds > 1 ? ` ± ${p.sd.toFixed(2)}%` : "%"}</text>`,
      );
    }
    ly += 24;
  }
  out.push(
    `<circle cx="${lx + 4}" cy="${ly - 4}" r="4.5" fill="#555" stroke="#555" stroke-width="2"/><text x="${lx + 16}" y="${ly}">KD student</text>`,
  );
  ly += 18;
  out.push(
    `<circle cx="${lx + 4}" cy="${ly - 4}" r="4.5" fill="#fff" stroke="#555" stroke-width="2"/><text x="${lx + 16}" y="${ly}">baseline (labels only)</text>`,
  );
  ly += 18;
  out.push(
    `<rect x="${lx - 1}" y="${ly - 9}" width="10" height="10" fill="#333"/><text x="${lx + 16}" y="${ly}">teacher</text>`,
  );
  ly += 18;
  const seeds = Math.max(...points.map((p) => p.seeds));
  if (seeds > 1) out.push(`<text x="${lx}" y="${ly}" fill="#555">bars: ±1 sd over ${seeds} seeds</text>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

export function writeAccuracyPlot(path: string, manifest: Manifest): void {
  writeFileAtomic(path, renderAccuracyPlot(manifest));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [manifestPath = "models/manifest.json", out = PLOT_FILE] = process.argv.slice(2);
  try {
    writeAccuracyPlot(out, parseManifest(JSON.parse(readFileSync(manifestPath, "utf8"))));
    console.log(`accuracy-plot: ${out} written from ${manifestPath}`);
  } catch (err) {
    console.error(`accuracy-plot: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
