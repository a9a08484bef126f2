// A whole distill run, small: the teacher and every student (KD and baseline) train, the loss goes
// down, and the run directory ends with its config, log, checkpoints and report.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { resolveConfig } from "../../../training/config/resolve.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { loadCheckpoint } from "../../../training/train/checkpoint.ts";
import { runPipeline } from "../../../training/train/pipeline.ts";
import { planSubRuns } from "../../../training/train/plan.ts";
import type { RunReport } from "../../../training/train/report.ts";
import { readMetrics } from "../../../training/train/metrics-log.ts";
import { openRunDir, readRunFile } from "../../../training/train/run-dir.ts";
import { writeCifar10, writeLearnableFashionMnist } from "../data/fixtures.ts";
import { comparable } from "./compare.ts";

let engine: { backend: string; device: string };
let dataDir: string;
/** The first test's run directory, whose teacher the next test reuses. */
let firstRun: string | undefined;

beforeAll(async () => {
  engine = await initBackend("wasm", { log: () => {} });
  dataDir = mkdtempSync(join(tmpdir(), "nd-pipeline-data-"));
  writeLearnableFashionMnist(dataDir, { train: 280, test: 80 });
});

describe("distill pipeline", () => {
  it("trains teacher and students, lowers the loss, and writes the report", async () => {
    const { preset, config } = resolveConfig({
      preset: "quick",
      flags: {
        data: dataDir,
        trainLimit: 0,
        valSize: 40,
        testLimit: 0,
        widthScale: 0.2,
        teacherWidthScale: 0.125,
        epochs: 3,
        teacherEpochs: 3,
        batchSize: 24,
        augment: false,
        learningRate: 0.1,
      },
    });
    const runDir = join(mkdtempSync(join(tmpdir(), "nd-pipeline-")), "run");
    openRunDir(runDir, preset, config, false);
    const lines: string[] = [];
    const result = await runPipeline({ runDir, preset, config, engine, log: (l) => lines.push(l) });
    expect(result.finished).toBe(true);
    firstRun = runDir;

    const names = planSubRuns(config).map((r) => r.name);
    expect(names).toEqual([
      "teacher",
      "unmodified-kd",
      "unmodified-baseline",
      "wide-kd",
      "wide-baseline",
      "narrow-deep-kd",
      "narrow-deep-baseline",
    ]);
    for (const name of names) {
      const { meta } = loadCheckpoint(join(runDir, name, "checkpoint.ndckpt"));
      expect(meta.done).toBe(true);
      expect(meta.history).toHaveLength(3);
      expect(meta.history[2]!.trainLoss, `${name} train loss`).toBeLessThan(meta.history[0]!.trainLoss);
    }
    const teacher = loadCheckpoint(join(runDir, "teacher", "checkpoint.ndckpt")).meta;
    expect(teacher.history[2]!.testAccuracy).toBeGreaterThan(0.5); // bars on 10 rows: easy, 10% is chance
    // The test split is measured once, after the last epoch; validation every epoch.
    expect(teacher.history.map((h) => h.testAccuracy === undefined)).toEqual([true, true, false]);
    expect(teacher.history.every((h) => h.valAccuracy !== undefined)).toBe(true);
    expect(teacher.dataset.normalization.mean[0]).toBeGreaterThan(0);

    const report = JSON.parse(readFileSync(join(runDir, "report.json"), "utf8")) as RunReport;
    expect(report.models.map((m) => m.name)).toEqual(names);
    for (const m of report.models) {
      expect(m.params).toBeGreaterThan(0);
      expect(m.macs).toBeGreaterThan(m.params);
      expect(m.backend).toBe("wasm");
      expect(m.imagesPerSecond).toBeGreaterThan(0);
      expect(m.testAccuracy).toBeGreaterThanOrEqual(0);
      expect(m.bestValAccuracy).toBeGreaterThanOrEqual(m.valAccuracy!);
      expect(m.trainCrossEntropy).toBeGreaterThan(0);
      expect(m.seed).toBe(config.seed);
    }
    expect(report.models.find((m) => m.name === "narrow-deep-kd")!.teacherEngine).toMatch(/onnxruntime-node/);
    expect(loadCheckpoint(join(runDir, "wide-kd", "checkpoint.ndckpt")).meta.teacher).toEqual({
      checkpoint: join(runDir, "teacher", "checkpoint.ndckpt"),
      engine: "onnxruntime-node (CPU), cached per augmented view",
    });
    expect(Object.keys(report.kdGain).sort()).toEqual(["narrow-deep", "unmodified", "wide"]);
    // A KD student's logged cross-entropy is its hard part, not the KD loss.
    const kdLast = loadCheckpoint(join(runDir, "wide-kd", "checkpoint.ndckpt")).meta.history.at(-1)!;
    expect(kdLast.trainCrossEntropy).not.toBeCloseTo(kdLast.trainLoss, 3);
    expect(report.computeSeconds).toBeCloseTo(
      report.models.reduce((s, m) => s + m.wallSeconds, 0),
      6,
    );
    const md = readFileSync(join(runDir, "report.md"), "utf8");
    expect(md).toMatch(/\| narrow-deep-kd \| student \| narrow-deep x0.2 \| kd \(T=4, alpha=0.9\) \|/);
    expect(existsSync(join(runDir, "config.json"))).toBe(true);
    expect(readFileSync(join(runDir, "log.txt"), "utf8")).toMatch(/teacher epoch 3\/3: train loss/);
    expect(lines.some((l) => /^model narrow-deep x0.2: [\d,]+ params, [\d,]+ MACs\/image$/.test(l))).toBe(true);
    expect(md).toMatch(/Compute: .*; teacher \w+, students \w+\)/);
    // metrics.jsonl: every sub-run's three epochs, with validation; the epoch lines carry the run's ETA.
    const records = readMetrics(join(runDir, "metrics.jsonl"));
    expect(records.filter((r) => r.kind === "epoch").map((r) => `${r.subRun} ${r.epoch}`)).toEqual(
      names.flatMap((n) => [1, 2, 3].map((e) => `${n} ${e}`)),
    );
    expect(
      records
        .filter((r) => r.kind === "epoch")
        .every((r) => r.valAccuracy !== undefined && r.learningRate > 0 && r.imagesPerSecond > 0),
    ).toBe(true);
    expect(records.filter((r) => r.subRun === "wide-kd").every((r) => r.distillation !== undefined)).toBe(true);
    expect(records.filter((r) => r.subRun === "wide-baseline").every((r) => r.distillation === undefined)).toBe(true);
    expect(lines.find((l) => l.startsWith("teacher epoch 1/3:"))).toMatch(
      /; run: 7 sub-runs, 20 epochs left, ETA \w+$/,
    );
    expect(lines.find((l) => l.startsWith("narrow-deep-baseline epoch 3/3:"))).toMatch(/; run: nothing left$/);

    // Resuming a finished run trains nothing and keeps the report.
    const again = await runPipeline({ runDir, preset, config, engine, log: (l) => lines.push(l) });
    expect(again.report.models.map((m) => m.testAccuracy)).toEqual(report.models.map((m) => m.testAccuracy));
    expect(lines.filter((l) => /already trained/.test(l))).toHaveLength(7);
  });

  it("distills from another run's teacher, mapping this run's normalization to the teacher's", async () => {
    expect(firstRun).toBeDefined();
    const teacherCheckpoint = join(firstRun!, "teacher", "checkpoint.ndckpt");
    const { preset, config } = resolveConfig({
      preset: "quick",
      flags: {
        data: dataDir,
        trainLimit: 150,
        valSize: 30,
        testLimit: 0,
        widthScale: 0.2,
        epochs: 1,
        batchSize: 24,
        augment: false,
        teacherEngine: "tfjs",
      },
    });
    const runDir = join(mkdtempSync(join(tmpdir(), "nd-pipeline-")), "run");
    openRunDir(runDir, preset, config, false);
    const lines: string[] = [];
    const result = await runPipeline({
      runDir,
      preset,
      config,
      engine,
      log: (l) => lines.push(l),
      teacherCheckpoint,
      only: ["narrow-deep-kd"],
    });
    expect(result.finished).toBe(true);
    const student = loadCheckpoint(join(runDir, "narrow-deep-kd", "checkpoint.ndckpt")).meta;
    expect(student.dataset.normalization).not.toEqual(loadCheckpoint(teacherCheckpoint).meta.dataset.normalization);
    expect(student.teacher).toEqual({ checkpoint: teacherCheckpoint, engine: "tfjs, cached per augmented view" });
    expect(existsSync(join(runDir, "teacher"))).toBe(false);
    expect(result.report.models.map((m) => m.name)).toEqual(["teacher", "narrow-deep-kd"]); // the reused teacher is reported too
  });

  it("trains a KD student to the same weights with the teacher cache as without, over seeds", async () => {
    expect(firstRun).toBeDefined();
    const teacherCheckpoint = join(firstRun!, "teacher", "checkpoint.ndckpt");
    const flags = {
      data: dataDir,
      trainLimit: 150,
      valSize: 30,
      testLimit: 0,
      widthScale: 0.2,
      epochs: 2,
      batchSize: 24,
      cropPadding: 1,
      seeds: 2,
      students: ["wide"],
    };
    const runs: Record<string, string> = {};
    const lines: string[] = [];
    for (const teacherCache of [true, false]) {
      const { preset, config } = resolveConfig({ preset: "quick", flags: { ...flags, teacherCache } });
      const runDir = join(mkdtempSync(join(tmpdir(), "nd-pipeline-")), "run");
      openRunDir(runDir, preset, config, false);
      const result = await runPipeline({
        runDir,
        preset,
        config,
        engine,
        log: (l) => lines.push(l),
        teacherCheckpoint,
      });
      expect(result.finished).toBe(true);
      runs[String(teacherCache)] = runDir;
      if (teacherCache) {
        expect(result.report.models.map((m) => m.name)).toEqual([
          "teacher",
          "wide-kd-s1",
          "wide-baseline-s1",
          "wide-kd-s2",
          "wide-baseline-s2",
        ]);
        const wide = result.report.architectures.find((a) => a.architecture === "wide")!;
        expect(wide.kd!.n).toBe(2);
        expect(Object.keys(wide.kdGain!.bySeed)).toEqual(["1", "2"]);
        expect(readFileSync(join(runDir, "report.md"), "utf8")).toMatch(
          /\| wide \| [\d.]+k \| [\d.]+k \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [+-][\d.]+ ± [\d.]+ \| 2 \| 1: [+-][\d.]+, 2: [+-][\d.]+ \|/,
        );
      }
    }
    // Seed 2 sees other images than seed 1 and repeats some of its views: the cache answered those.
    expect(lines.some((l) => /teacher cache: \d+ images answered from the cache/.test(l))).toBe(true);
    for (const sub of ["wide-kd-s1", "wide-kd-s2"]) {
      const [a, b] = [runs.true!, runs.false!].map((r) => ({
        ...comparable(loadCheckpoint(join(r, sub, "checkpoint.ndckpt"))),
        teacherEngine: undefined,
      }));
      expect(a, sub).toEqual(b);
    }
  });

  it("trains on CIFAR-10's 32x32 colour images with its own crop padding", async () => {
    const cifar = writeCifar10(mkdtempSync(join(tmpdir(), "nd-cifar-")), 20);
    const { preset, config } = resolveConfig({
      preset: "quick",
      flags: {
        dataset: "cifar10",
        data: cifar,
        trainLimit: 0,
        valSize: 20,
        testLimit: 0,
        teacherWidthScale: 0.125,
        teacherEpochs: 1,
        batchSize: 16,
      },
    });
    const runDir = join(mkdtempSync(join(tmpdir(), "nd-pipeline-")), "run");
    openRunDir(runDir, preset, config, false);
    const result = await runPipeline({ runDir, preset, config, engine, log: () => {}, only: ["teacher"] });
    expect(result.finished).toBe(true);
    const { graph, meta } = loadCheckpoint(join(runDir, "teacher", "checkpoint.ndckpt"));
    expect(graph.input).toEqual({ height: 32, width: 32, channels: 3 });
    expect(meta.dataset).toMatchObject({ name: "cifar10", trainSamples: 80, valSamples: 20, testSamples: 20 });
    expect(meta.dataset.normalization.mean).toHaveLength(3);
    expect(meta.config.augmentation).toEqual({ cropPadding: 4, flip: true });
  });

  it("refuses KD without a trained teacher and unknown sub-runs", async () => {
    const { preset, config } = resolveConfig({
      preset: "quick",
      flags: { data: dataDir, trainLimit: 0, valSize: 40, testLimit: 0 },
    });
    const runDir = join(mkdtempSync(join(tmpdir(), "nd-pipeline-")), "run");
    openRunDir(runDir, preset, config, false);
    await expect(runPipeline({ runDir, preset, config, engine, log: () => {}, only: ["wide-kd"] })).rejects.toThrow(
      /wide-kd needs a trained teacher: .*teacher\/checkpoint\.ndckpt does not exist/,
    );
    await expect(
      runPipeline({ runDir, preset, config, engine, log: () => {}, only: ["wide-distill"] }),
    ).rejects.toThrow(/--only: unknown sub-run wide-distill \(sub-runs: teacher, unmodified-kd/);
    expect(() => openRunDir(runDir, preset, config, false)).toThrow(/already holds a run; resume it with --resume/);
    expect(() => openRunDir(runDir, preset, { ...config, epochs: 9 }, true)).toThrow(
      /started with a different configuration \(epochs: 2 vs 9\)/,
    );
    // A run started with --teacher remembers it, and refuses another one on resume.
    const withTeacher = join(mkdtempSync(join(tmpdir(), "nd-pipeline-")), "run");
    openRunDir(withTeacher, preset, config, false, { teacher: "/x/teacher.ndckpt", only: ["teacher"] });
    expect(readRunFile(withTeacher).only).toEqual(["teacher"]);
    expect(readRunFile(withTeacher).teacher).toBe("/x/teacher.ndckpt");
    expect(() => openRunDir(withTeacher, preset, config, true, { teacher: "/y/teacher.ndckpt" })).toThrow(
      /distills from \/x\/teacher\.ndckpt, not \/y\/teacher\.ndckpt/,
    );
    // A run started without one (baselines first) records the teacher it is first resumed with.
    openRunDir(runDir, preset, config, true, { teacher: "/y/teacher.ndckpt" });
    expect(readRunFile(runDir).teacher).toBe("/y/teacher.ndckpt");
    expect(() => openRunDir(runDir, preset, config, true, { teacher: "/z/teacher.ndckpt" })).toThrow(
      /distills from \/y\/teacher\.ndckpt/,
    );
  });
});
