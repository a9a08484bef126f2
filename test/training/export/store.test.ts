// The models/ transaction without any model engine: validation before writing, the writer lock, and
// the README results table generated from a manifest.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Manifest, type ModelEntry, ManifestError } from "../../../models/schema.ts";
import {
  type EdgeBench,
  RESULTS_BEGIN,
  RESULTS_END,
  readEdgeBench,
  renderResultsTable,
  updateResultsTable,
} from "../../../scripts/results-table.ts";
import { mergeEntries } from "../../../training/export/entry.ts";
import { readManifest, recoverModels, updateModels } from "../../../training/export/store.ts";

const tmp = () => mkdtempSync(join(tmpdir(), "store-"));

function entry(
  name: string,
  role: "teacher" | "student",
  top1: number,
  loss: object = { name: "kd", options: { temperature: 4, alpha: 0.9 } },
): ModelEntry {
  return {
    name,
    version: "run-1",
    role,
    architecture: name.replace(/-baseline$/, ""),
    file: `${name}.onnx`,
    sha256: "0".repeat(64),
    bytes: 2048,
    input: { name: "input", shape: [-1, 1, 28, 28], datatype: "FP32", layout: "NCHW" },
    outputs: [
      { name: "logits", shape: [-1, 10], datatype: "FP32" },
      { name: "probabilities", shape: [-1, 10], datatype: "FP32" },
    ],
    normalization: { mean: [0.286], std: [0.353] },
    labels: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
    metrics: {
      params: 123_456,
      macs: 33_300_000,
      accuracy: { top1, dataset: "fashion-mnist", split: "test", samples: 10000 },
    },
    export: { maxAbsLogitDiff: 3.2e-6, top1Agreement: 1, samples: 512, opset: 13, exportedAt: "2026-01-01T00:00:00Z" },
    training: { loss, epochs: 30, trainSamples: 55000, widthScale: name === "teacher" ? 1 : 0.5 },
  };
}
const empty: Manifest = { schemaVersion: 1, defaultStudent: "none", models: [] };

describe("updateModels", () => {
  it("validates the new manifest before writing anything", () => {
    const dir = tmp();
    const bad = { ...entry("wide", "student", 0.9), sha256: "XYZ" };
    expect(() =>
      updateModels(dir, [{ file: "wide.onnx", bytes: new Uint8Array([1]) }], () => ({
        ...empty,
        defaultStudent: "wide",
        models: [bad],
      })),
    ).toThrow(ManifestError);
    expect(readdirSync(dir)).toEqual([]);
    expect(() => updateModels(dir, [{ file: "../x.onnx", bytes: new Uint8Array([1]) }], (m) => m)).toThrow(
      'bad model file name "../x.onnx"',
    );
  });

  it("writes files and manifest, and reads them back", () => {
    const dir = tmp();
    const written = updateModels(dir, [{ file: "wide.onnx", bytes: new Uint8Array([1, 2, 3]) }], (m) =>
      mergeEntries(m, [entry("wide", "student", 0.9)]),
    );
    expect(readManifest(dir)).toEqual(written);
    expect(readFileSync(join(dir, "wide.onnx"))).toEqual(Buffer.from([1, 2, 3]));
    expect(recoverModels(dir)).toBe("clean");
  });

  let holder: ChildProcess | undefined;
  afterAll(() => holder?.kill());
  it("waits for another live process holding the lock, and gives up after the timeout", () => {
    const dir = tmp();
    holder = spawn("sleep", ["60"], { stdio: "ignore" });
    writeFileSync(join(dir, ".export.lock"), String(holder.pid));
    const started = Date.now();
    expect(() => updateModels(dir, [], (m) => m, { lockTimeoutMs: 500 })).toThrow(
      `is being written by another export (pid ${holder.pid}) for more than 0.5 s`,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(existsSync(join(dir, ".export.lock"))).toBe(true);
  });

  it("lets concurrent writers take turns, each merging into the other's manifest", async () => {
    const dir = tmp();
    const writer = (_name: string) =>
      `import { updateModels } from ${JSON.stringify(new URL("../../../training/export/store.ts", import.meta.url).pathname)};
       import { mergeEntries } from ${JSON.stringify(new URL("../../../training/export/entry.ts", import.meta.url).pathname)};
       const entry = JSON.parse(process.argv.at(-1));
       for (let i = 0; i < 100; i++) updateModels(${JSON.stringify(dir)}, [{ file: entry.name + ".onnx", bytes: new Uint8Array([i]) }], (m) => mergeEntries(m, [{ ...entry, version: String(i) }]));`;
    const run = (name: string) =>
      new Promise<number | null>((resolve) =>
        spawn(
          process.execPath,
          ["--import", "tsx", "--input-type=module", "-e", writer(name), JSON.stringify(entry(name, "student", 0.9))],
          { stdio: "inherit" },
        ).on("exit", resolve),
      );
    expect(await Promise.all([run("wide"), run("narrow-deep")])).toEqual([0, 0]);
    const m = readManifest(dir);
    expect(m.models.map((e) => [e.name, e.version])).toEqual([
      ["narrow-deep", "99"],
      ["wide", "99"],
    ]);
    expect(readdirSync(dir).sort()).toEqual(["manifest.json", "narrow-deep.onnx", "wide.onnx"]);
  });

  it("names a manifest that is not JSON", () => {
    const dir = tmp();
    writeFileSync(join(dir, "manifest.json"), "{ not json");
    expect(() => readManifest(dir)).toThrow(/manifest\.json: not valid JSON/);
  });
});

describe("mergeEntries", () => {
  it("replaces by name, orders teacher first, and picks the narrow-deep student as default", () => {
    let m = mergeEntries(empty, [entry("wide", "student", 0.9)]);
    expect(m.defaultStudent).toBe("wide");
    m = mergeEntries(m, [entry("teacher", "teacher", 0.93), entry("narrow-deep", "student", 0.91)]);
    expect(m.models.map((e) => e.name)).toEqual(["teacher", "narrow-deep", "wide"]);
    expect(m.defaultStudent).toBe("narrow-deep");
    m = mergeEntries(m, [entry("wide", "student", 0.92)]);
    expect(m.defaultStudent).toBe("narrow-deep");
    expect(m.models.find((e) => e.name === "wide")!.metrics.accuracy!.top1).toBe(0.92);
    expect(() => mergeEntries(empty, [entry("teacher", "teacher", 0.9)])).toThrow(/needs at least one student/);
  });

  it("takes the default student and the served list chosen at export, and keeps an int8 default's precision", () => {
    const int8 = (twin: string): ModelEntry => ({
      ...entry(`${twin}-int8`, "student", 0.9),
      quantization: {
        twin,
        twinSha256: "0".repeat(64),
        format: "qdq",
        weights: "int8 per channel",
        activations: "uint8 per tensor",
        bias: "int32",
        calibration: { dataset: "fashion-mnist", split: "train", samples: 1000, method: "minmax" },
        relativeLogitError: 0.01,
        tolerance: { maxRelativeLogitError: 0.1 },
        runtime: "onnxruntime-node",
      },
    });
    const all = [
      entry("narrow-deep", "student", 0.9),
      int8("narrow-deep"),
      entry("wide", "student", 0.9),
      int8("wide"),
    ];
    let m = mergeEntries(empty, all);
    expect(m.defaultStudent).toBe("narrow-deep");
    expect(m.serve).toBeUndefined();
    m = mergeEntries(m, [int8("wide")], { defaultStudent: "narrow-deep-int8", serve: ["narrow-deep", "wide-int8"] });
    expect([m.defaultStudent, m.serve]).toEqual(["narrow-deep-int8", ["narrow-deep", "wide-int8"]]);
    // Exported again without a choice: still the int8 narrow-deep, the list kept.
    m = mergeEntries(m, all);
    expect([m.defaultStudent, m.serve]).toEqual(["narrow-deep-int8", ["narrow-deep", "wide-int8"]]);
    // An fp32 default stays fp32 on re-export; an empty list serves the default alone.
    m = mergeEntries(m, all, { defaultStudent: "wide", serve: [] });
    expect(mergeEntries(m, all)).toMatchObject({ defaultStudent: "narrow-deep", serve: [] });
    expect(() => mergeEntries(m, all, { defaultStudent: "narrow-deep-fp16" })).toThrow(
      /--default-student narrow-deep-fp16: no such student \(students: narrow-deep, narrow-deep-int8, wide, wide-int8\)/,
    );
  });
});

describe("results table", () => {
  const manifest = mergeEntries(empty, [
    entry("teacher", "teacher", 0.9312, { name: "ce", options: {} }),
    entry("narrow-deep", "student", 0.9123),
    entry("narrow-deep-baseline", "student", 0.9051, { name: "ce", options: {} }),
  ]);

  it("renders one row per model from the manifest, with the KD gain over the baseline", () => {
    const table = renderResultsTable(manifest);
    const rows = table.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| model"));
    expect(rows).toEqual([
      "| teacher | teacher | teacher | 123.5 k | 33.30 M | 93.12% |  |  |  | labels only (CE), 30 epochs on 55,000 images | 3.2e-6 | 2 KiB | `run-1` |",
      "| **narrow-deep** (default) | student | narrow-deep ×0.5 | 123.5 k | 33.30 M | 91.23% |  | +0.72 |  | KD T=4 α=0.9, 30 epochs on 55,000 images | 3.2e-6 | 2 KiB | `run-1` |",
      "| narrow-deep-baseline | student | narrow-deep ×0.5 | 123.5 k | 33.30 M | 90.51% |  |  |  | labels only (CE), 30 epochs on 55,000 images | 3.2e-6 | 2 KiB | `run-1` |",
    ]);
    expect(table).toContain("fashion-mnist test split, 10000 images");
    // A baseline trained on other data is no baseline: no gain is claimed.
    const other = {
      ...manifest,
      models: manifest.models.map((m) =>
        m.name === "narrow-deep-baseline" ? { ...m, training: { ...m.training, trainSamples: 1000 } } : m,
      ),
    };
    expect(renderResultsTable(other)).toContain("| 91.23% |  |  |  | KD");
  });

  it("shows the bench's in-Worker latency only for the very file it measured", () => {
    const [teacher, student] = manifest.models;
    const studentFile = "ab".repeat(32);
    const m = { ...manifest, models: manifest.models.map((e) => (e === student ? { ...e, sha256: studentFile } : e)) };
    const bench: EdgeBench = {
      date: "2026-11-29T23:00:00.000Z",
      command: "npm run bench -- --out docs/bench",
      models: [
        { model: "narrow-deep", sha256: studentFile, inWorkerInference: { mean: 1.234, n: 400 } },
        // The teacher's file changed since it was measured: no figure.
        { model: "teacher", sha256: "cd".repeat(32), inWorkerInference: { mean: 9, n: 400 } },
      ],
    };
    const table = renderResultsTable(m, bench);
    const row = (name: string) =>
      table.split("\n").find((l) => l.includes(`| ${name} |`) || l.includes(`**${name}**`))!;
    expect(row("narrow-deep")).toContain("| +0.72 | 1.23 | KD");
    expect(row(teacher!.name)).toContain("| 93.12% |  |  |  | labels only");
    expect(table).toContain("measured by `npm run bench -- --out docs/bench` on 2026-11-29");
    expect(renderResultsTable(manifest)).not.toContain("In-Worker:");
  });

  it("reads edge.json when there is one and names a file that is not one", () => {
    const dir = tmp();
    expect(readEdgeBench(join(dir, "edge.json"))).toBeUndefined();
    writeFileSync(join(dir, "edge.json"), JSON.stringify({ rows: [] }));
    expect(() => readEdgeBench(join(dir, "edge.json"))).toThrow(
      /edge\.json: not an edge\.json written by npm run bench/,
    );
  });

  it("lists an int8 variant with its twin and its error against it, and claims no KD gain for it", () => {
    const int8: ModelEntry = {
      ...entry("narrow-deep-int8", "student", 0.9119),
      architecture: "narrow-deep",
      quantization: {
        twin: "narrow-deep",
        twinSha256: "0".repeat(64),
        format: "qdq",
        weights: "int8 per channel",
        activations: "uint8 per tensor",
        bias: "int32",
        calibration: { dataset: "fashion-mnist", split: "train", samples: 1000, method: "minmax" },
        relativeLogitError: 0.012,
        tolerance: { maxRelativeLogitError: 0.1 },
        runtime: "onnxruntime-node",
      },
    };
    const row = renderResultsTable(mergeEntries(manifest, [int8]))
      .split("\n")
      .find((l) => l.startsWith("| narrow-deep-int8 |"))!;
    expect(row).toContain("| 91.19% |  |  |  | int8 of narrow-deep (minmax, 1000 train images) | 1.2% (vs fp32) |");
  });

  it("gives accuracy over seeds and the KD gain paired by seed", () => {
    const seeds = (bySeed: Record<string, number>, shipped: number) => {
      const v = Object.values(bySeed);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return {
        mean,
        sd: Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / (v.length - 1)),
        n: v.length,
        bySeed,
        shipped,
      };
    };
    const withSeeds = (e: ModelEntry, bySeed: Record<string, number>, shipped: number): ModelEntry => ({
      ...e,
      metrics: { ...e.metrics, accuracy: { ...e.metrics.accuracy!, seeds: seeds(bySeed, shipped) } },
    });
    const m = mergeEntries(empty, [
      withSeeds(entry("narrow-deep", "student", 0.931), { 1: 0.93, 2: 0.932, 3: 0.934 }, 2),
      withSeeds(
        entry("narrow-deep-baseline", "student", 0.928, { name: "ce", options: {} }),
        { 1: 0.929, 2: 0.928, 3: 0.93 },
        2,
      ),
    ]);
    const rows = renderResultsTable(m)
      .split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| model"));
    // KD - baseline per seed: +0.1, +0.4, +0.4 points: mean +0.30, sd 0.17.
    expect(rows[0]).toContain("| 93.10% | 93.20 ± 0.20 (3) | +0.30 ± 0.17 (3 seeds) |  | KD");
    expect(rows[1]).toContain("| 92.80% | 92.90 ± 0.10 (3) |  |  | labels only");
  });

  it("rewrites only the text between the markers, and names a README without them", () => {
    const dir = tmp();
    const readme = join(dir, "README.md");
    writeFileSync(readme, `intro\n${RESULTS_BEGIN}\nstale\n${RESULTS_END}\noutro\n`);
    updateResultsTable(readme, manifest);
    const text = readFileSync(readme, "utf8");
    expect(text.startsWith(`intro\n${RESULTS_BEGIN}\n| model |`)).toBe(true);
    expect(
      text.endsWith(`its fp32 twin relative to the twin's mean logit (docs/int8.md).\n${RESULTS_END}\noutro\n`),
    ).toBe(true);
    writeFileSync(readme, "no markers\n");
    expect(() => updateResultsTable(readme, manifest)).toThrow(/README\.md: no results table markers/);
  });
});
