// The README's "At the edge" table from a bench's edge.json: fp32 and int8 side by side, ratios
// against the fp32 file's native time, and only the files the manifest ships.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Manifest, ModelEntry } from "../../models/schema.ts";
import { EDGE_BEGIN, EDGE_END, type EdgeBench, type EdgeModel, renderEdgeTable } from "../../scripts/edge-table.ts";
import { RESULTS_BEGIN, RESULTS_END, updateResultsTable } from "../../scripts/results-table.ts";

const sha = (c: string) => c.repeat(64);
const measured = (model: string, file: string, inWorker: number, extra: Partial<EdgeModel> = {}): EdgeModel => ({
  model,
  sha256: sha(file),
  inWorkerInference: { mean: inWorker, n: 400 },
  precision: "fp32",
  fp32Twin: model,
  macs: 11_396_544,
  convolutions: 29,
  onnxruntimeNodeFp32: { mean: 0.65 },
  workerOverhead: { mean: 0.38 },
  ...extra,
});
const bench: EdgeBench = {
  date: "2026-11-30T04:00:00.000Z",
  command: "npm run bench -- --out docs/bench",
  source: "models",
  machine: { cpus: 2 },
  defaultStudent: "narrow-deep",
  models: [
    measured("wide", "a", 2.58, { convolutions: 9, macs: 11_812_464, onnxruntimeNodeFp32: { mean: 0.536 } }),
    measured("narrow-deep", "b", 2.82),
    measured("narrow-deep-int8", "c", 2.6, { precision: "int8", fp32Twin: "narrow-deep" }),
  ],
};
const all = new Set(["a", "b", "c"].map(sha));

describe("renderEdgeTable", () => {
  it("puts the default first, its int8 variant beside it, and divides both by the fp32 file's native time", () => {
    const rows = renderEdgeTable(bench, all)
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| student"));
    expect(rows).toEqual([
      "| narrow-deep (default) | 29 | 11.4M | 2.82 / 2.60 | 0.650 | 4.34x / 4.00x | 0.38 |",
      "| wide | 9 | 11.8M | 2.58 / - | 0.536 | 4.81x / - | 0.38 |",
    ]);
    expect(renderEdgeTable(bench, all)).toContain(
      "Measured by `npm run bench -- --out docs/bench` on 2026-11-30, models from `models`, 2 cores",
    );
  });

  it("shows no figure for a file the manifest no longer ships", () => {
    // narrow-deep was retrained: its old figures and its old int8 variant's must not be shown.
    const rows = renderEdgeTable(bench, new Set([sha("a")]))
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| student"));
    expect(rows).toEqual(["| wide | 9 | 11.8M | 2.58 / - | 0.536 | 4.81x / - | 0.38 |"]);
    expect(renderEdgeTable(bench, new Set())).toMatch(/have not been benchmarked yet/);
  });
});

describe("updateResultsTable with edge markers", () => {
  it("rewrites both generated blocks and leaves the text around them", () => {
    const dir = mkdtempSync(join(tmpdir(), "edge-table-"));
    const readme = join(dir, "README.md");
    writeFileSync(
      readme,
      `intro\n${RESULTS_BEGIN}\nstale\n${RESULTS_END}\nmiddle\n${EDGE_BEGIN}\nstale\n${EDGE_END}\noutro\n`,
    );
    const model = (name: string, file: string): ModelEntry => ({
      name,
      version: "run-1",
      role: "student",
      architecture: name,
      file: `${name}.onnx`,
      sha256: sha(file),
      bytes: 2048,
      input: { name: "input", shape: [-1, 1, 28, 28], datatype: "FP32", layout: "NCHW" },
      outputs: [{ name: "logits", shape: [-1, 10], datatype: "FP32" }],
      normalization: { mean: [0.286], std: [0.353] },
      labels: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
      metrics: { params: 97_730, macs: 11_396_544 },
    });
    const manifest: Manifest = {
      schemaVersion: 1,
      defaultStudent: "narrow-deep",
      models: [model("narrow-deep", "b"), model("wide", "a")],
    };
    updateResultsTable(readme, manifest, bench);
    const text = readFileSync(readme, "utf8");
    expect(text).not.toContain("stale");
    expect(text).toContain(`middle\n${EDGE_BEGIN}\n| student |`);
    expect(text).toContain("| narrow-deep (default) | 29 | 11.4M | 2.82 / - |");
    expect(text.endsWith(`${EDGE_END}\noutro\n`)).toBe(true);
  });
});
