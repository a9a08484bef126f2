// The README's accuracy-against-MACs plot, from a manifest: every model drawn, KD and baseline apart,
// error bars only where there are seeds, and the axes covering every bar.
import { describe, expect, it } from "vitest";
import type { Manifest, ModelEntry } from "../../models/schema.ts";
import { renderAccuracyPlot } from "../../scripts/accuracy-plot.ts";

function model(
  name: string,
  role: "teacher" | "student",
  macs: number,
  top1: number,
  bySeed?: Record<string, number>,
): ModelEntry {
  const v = bySeed ? Object.values(bySeed) : [];
  const mean = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  const sd = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, v.length - 1));
  return {
    name,
    version: "r",
    role,
    architecture: name.replace(/-baseline$/, ""),
    file: `${name}.onnx`,
    sha256: "0".repeat(64),
    bytes: 1,
    input: { name: "input", shape: [-1, 1, 28, 28], datatype: "FP32", layout: "NCHW" },
    outputs: [],
    normalization: { mean: [0], std: [1] },
    labels: ["a"],
    metrics: {
      params: 1,
      macs,
      accuracy: {
        top1,
        dataset: "fashion-mnist",
        split: "test",
        samples: 10000,
        ...(bySeed ? { seeds: { mean, sd, n: v.length, bySeed, shipped: 1 } } : {}),
      },
    },
  };
}

const manifest: Manifest = {
  schemaVersion: 1,
  defaultStudent: "narrow-deep",
  models: [
    model("teacher", "teacher", 80.5e6, 0.951),
    model("narrow-deep", "student", 11.4e6, 0.935, { 1: 0.933, 2: 0.935, 3: 0.937 }),
    model("narrow-deep-baseline", "student", 11.4e6, 0.931, { 1: 0.929, 2: 0.931, 3: 0.933 }),
    model("wide", "student", 11.8e6, 0.93, { 1: 0.928, 2: 0.93, 3: 0.932 }),
  ],
};

describe("accuracy plot", () => {
  it("draws every model, KD filled and baselines hollow, with ±1 sd bars over seeds", () => {
    const svg = renderAccuracyPlot(manifest);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<rect class="teacher"/g)).toHaveLength(1);
    expect(svg.match(/<circle class="kd"/g)).toHaveLength(2);
    expect(svg.match(/<circle class="baseline"/g)).toHaveLength(1);
    expect(svg.match(/<g class="errorbar"/g)).toHaveLength(3); // the teacher has one seed: no bar
    expect(svg).toContain("narrow-deep: 93.50% ± 0.20 over 3 seeds, 11.40M MACs");
    expect(svg).toContain("teacher 95.10%");
    expect(svg).toContain("bars: ±1 sd over 3 seeds");
    // Every point and bar end lies inside the plotting area.
    const ys = [...svg.matchAll(/<(?:circle[^>]*cy|line[^>]*y1)="([\d.]+)"/g)].map((m) => Number(m[1]));
    for (const y of ys) expect(y).toBeGreaterThanOrEqual(40);
    for (const y of ys) expect(y).toBeLessThanOrEqual(440 - 56);
  });

  it("leaves int8 variants to the table", () => {
    const twin = manifest.models[1]!;
    const int8 = { ...twin, name: "narrow-deep-int8", quantization: { twin: "narrow-deep" } } as unknown as ModelEntry;
    const svg = renderAccuracyPlot({ ...manifest, models: [...manifest.models, int8] });
    expect(svg.match(/<circle class="kd"/g)).toHaveLength(2);
    expect(svg).not.toContain("narrow-deep-int8");
  });

  it("refuses a manifest with no accuracy to plot", () => {
    const bare = {
      ...manifest,
      models: manifest.models.map((m) => ({ ...m, metrics: { params: 1, macs: m.metrics.macs } })),
    };
    expect(() => renderAccuracyPlot(bare)).toThrow(/no model in the manifest has a test accuracy to plot/);
  });
});
