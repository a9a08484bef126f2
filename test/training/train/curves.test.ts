// A run's curves, read back by other readers than the writer (Python's XML and CSV parsers): the
// committed students' run, which predates metrics.jsonl (its checkpoints' history fills in), and a
// fresh run whose metrics.jsonl has step records too; the CLI's refusals.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadDataset } from "../../../training/data/index.ts";
import { prepareData } from "../../../training/data/prepare.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { loadCheckpoint } from "../../../training/train/checkpoint.ts";
import { writeCurves } from "../../../training/train/curves.ts";
import { type TrainSpec, train } from "../../../training/train/loop.ts";
import { MetricsLog } from "../../../training/train/metrics-log.ts";
import { writeLearnableFashionMnist } from "../data/fixtures.ts";

const ROOT = join(import.meta.dirname, "../../..");

/** What Python's own parsers read in the two files: per panel title, the lines' names and point counts; the CSV's rows. */
function readBack(
  svg: string,
  csv: string,
): { panels: Record<string, Record<string, number>>; rows: Record<string, string>[] } {
  const script = `
import csv, json, sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
panels = {}
for g in root.findall("s:g", ns):
    title = g.find("s:text", ns).text
    panels[title] = {p.find("s:title", ns).text: len(p.get("points").split()) for p in g.findall("s:polyline", ns)}
rows = list(csv.DictReader(open(sys.argv[2], newline="")))
print(json.dumps({"panels": panels, "rows": rows}))
`;
  return JSON.parse(execFileSync("python3", ["-c", script, svg, csv], { encoding: "utf8" }));
}

describe("curves", () => {
  it("draws the committed students' run from its checkpoints' history", () => {
    const runDir = join(ROOT, "models/runs/fmnist-students");
    const out = mkdtempSync(join(tmpdir(), "nd-curves-"));
    const { svg, csv } = writeCurves(runDir, out);
    const { panels, rows } = readBack(svg, csv);
    expect(Object.keys(panels)).toEqual([
      "training loss (log scale)",
      "training cross-entropy with the labels",
      "validation accuracy",
      "validation accuracy, epochs 8-15",
    ]);
    for (const [title, lines] of Object.entries(panels)) {
      expect(Object.keys(lines), title).toHaveLength(18);
      expect(
        Object.values(lines).every((n) => n === (title.includes("8-15") ? 8 : 15)),
        title,
      ).toBe(true);
    }
    expect(rows).toHaveLength(18 * 15);
    const meta = loadCheckpoint(join(runDir, "wide-kd-s2", "checkpoint.ndckpt")).meta;
    const wide = rows.filter((r) => r.subRun === "wide-kd-s2");
    expect(wide.map((r) => Number(r.valAccuracy))).toEqual(meta.history.map((h) => h.valAccuracy));
    expect(wide.map((r) => Number(r.step))).toEqual(meta.history.map((h) => h.epoch * 429));
    // KD's distillation part: the loss less 0.1 of the cross-entropy; a baseline has none.
    expect(Number(wide[0]!.distillation)).toBeCloseTo(
      meta.history[0]!.trainLoss - 0.1 * meta.history[0]!.trainCrossEntropy!,
      10,
    );
    expect(rows.find((r) => r.subRun === "wide-baseline-s2")!.distillation).toBe("");
    expect(Number(wide.at(-1)!.testAccuracy)).toBe(meta.history.at(-1)!.testAccuracy);
  });

  describe("of a fresh run", () => {
    let runDir: string;
    beforeAll(async () => {
      const engine = await initBackend("wasm", { log: () => {} });
      const dataDir = mkdtempSync(join(tmpdir(), "nd-curves-data-"));
      writeLearnableFashionMnist(dataDir, { train: 80, test: 20 });
      const data = prepareData(loadDataset("fashion-mnist", dataDir), {
        trainLimit: 0,
        valSize: 16,
        testLimit: 0,
        seed: 2,
      });
      runDir = mkdtempSync(join(tmpdir(), "nd-curves-run-"));
      const spec: TrainSpec = {
        name: "wide-baseline",
        role: "student",
        architecture: "wide",
        widthScale: 0.2,
        loss: { name: "ce", options: {} },
        epochs: 2,
        batchSize: 16,
        evalBatchSize: 64,
        schedule: { kind: "cosine", learningRate: 0.05, milestones: [], gamma: 0.1, warmupEpochs: 0 },
        sgd: { momentum: 0.9, weightDecay: 5e-4, nesterov: true },
        augmentation: null,
        seed: 1,
      };
      await train(spec, {
        dir: join(runDir, spec.name),
        data,
        engine,
        log: () => {},
        checkpointMinutes: 0,
        metrics: new MetricsLog(runDir),
        metricsEvery: 1,
      });
    });

    it("writes every record of metrics.jsonl to the CSV and the epochs to the SVG, leaving metrics.jsonl alone", () => {
      const before = readFileSync(join(runDir, "metrics.jsonl"), "utf8");
      const { svg, csv } = writeCurves(runDir);
      expect(readFileSync(join(runDir, "metrics.jsonl"), "utf8")).toBe(before);
      const { panels, rows } = readBack(svg, csv);
      expect(rows.map((r) => `${r.kind}:${r.step}`)).toEqual([
        "step:1",
        "step:2",
        "step:3",
        "step:4",
        "epoch:4",
        "step:5",
        "step:6",
        "step:7",
        "step:8",
        "epoch:8",
      ]);
      expect(rows.every((r) => r.time !== "" && Number(r.learningRate) > 0 && Number(r.imagesPerSecond) > 0)).toBe(
        true,
      );
      expect(rows.filter((r) => r.valAccuracy !== "")).toHaveLength(2);
      expect(Object.keys(panels)).toHaveLength(3); // two epochs: no zoom on the last half
      expect(panels["validation accuracy"]).toEqual({ "wide-baseline": 2 });
    });
  });

  it("npm run curves refuses what is not a run, naming it", () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "training/cli/curves.ts"), ...args], {
        encoding: "utf8",
      });
    const empty = mkdtempSync(join(tmpdir(), "nd-curves-empty-"));
    mkdirSync(join(empty, "teacher"));
    const none = cli(empty);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/curves: .*nd-curves-empty-\w+: no sub-run checkpoints here/);
    expect(cli(join(empty, "missing")).stderr).toMatch(/curves: .*missing: no such run directory/);
    expect(cli().stderr).toMatch(/curves: expected one run directory, got 0/);
  });
});
