// Whole runs on what users bring, small: DKD and attention transfer next to KD from one teacher; a
// folder of images distilled from an ONNX teacher made elsewhere, then exported; the project's own
// exported teacher as --teacher through the CLI, its classes in another order mapped (and, told a
// wrong order, its students wrong); a Pascal VOC folder training a multi-label student, exported
// with sigmoid probabilities.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../../../models/schema.ts";
import { parseFlag, resolveConfig } from "../../../training/config/resolve.ts";
import type { DistillConfig } from "../../../training/config/schema.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { exportRun } from "../../../training/export/index.ts";
import { loadCheckpoint } from "../../../training/train/checkpoint.ts";
import { checkMethods } from "../../../training/train/check-methods.ts";
import { runPipeline } from "../../../training/train/pipeline.ts";
import { planSubRuns } from "../../../training/train/plan.ts";
import { openRunDir } from "../../../training/train/run-dir.ts";
import { writeLearnableFashionMnist } from "../data/fixtures.ts";
import { writeImageFolder, writeVoc } from "../data/image-fixtures.ts";
import { gemmTeacher } from "./onnx-teachers.ts";

const CLI = join(import.meta.dirname, "../../../training/cli/distill.ts");

/** `npm run distill` as a user runs it: its own process, its teacher cache in a folder of its own. */
function distill(args: string[]): Promise<{ code: number | null; output: string; runDir: string }> {
  const runDir = args[args.indexOf("--run-dir") + 1]!;
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NARROWDEEP_CACHE_DIR: temp("cache") },
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, output, runDir })));
}

let engine: { backend: string; device: string };
beforeAll(async () => {
  engine = await initBackend("wasm", { log: () => {} });
});

const temp = (name: string) => mkdtempSync(join(tmpdir(), `nd-byo-${name}-`));
const tiny = {
  trainLimit: 0,
  testLimit: 0,
  widthScale: 0.25,
  teacherWidthScale: 0.125,
  epochs: 3,
  teacherEpochs: 3,
  batchSize: 16,
  augment: false,
  learningRate: 0.1,
} satisfies Partial<DistillConfig>;

async function run(flags: Partial<DistillConfig>, teacherCheckpoint?: string, only?: string[]) {
  const { preset, config } = resolveConfig({ preset: "quick", flags });
  checkMethods(config, teacherCheckpoint);
  const runDir = join(temp("run"), "run");
  openRunDir(runDir, preset, config, false, { teacher: teacherCheckpoint, only });
  const lines: string[] = [];
  const result = await runPipeline({
    runDir,
    preset,
    config,
    engine,
    log: (l) => lines.push(l),
    teacherCheckpoint,
    only,
  });
  expect(result.finished).toBe(true);
  return {
    runDir,
    config,
    lines,
    report: result.report,
    meta: (name: string) => loadCheckpoint(join(runDir, name, "checkpoint.ndckpt")).meta,
  };
}

describe("bring your own", () => {
  it("trains DKD and attention-transfer students beside KD from one teacher, each through the registry", async () => {
    const data = temp("fmnist");
    writeLearnableFashionMnist(data, { train: 200, test: 60 });
    const r = await run({
      ...tiny,
      data,
      valSize: 40,
      students: ["narrow-deep"],
      loss: ["kd", "dkd", "at"],
      lossOptions: { dkd: { beta: 2 } },
    });
    expect(planSubRuns(r.config).map((s) => s.name)).toEqual([
      "teacher",
      "narrow-deep-kd",
      "narrow-deep-dkd",
      "narrow-deep-at",
      "narrow-deep-baseline",
    ]);
    for (const name of ["narrow-deep-kd", "narrow-deep-dkd", "narrow-deep-at", "narrow-deep-baseline"]) {
      const meta = r.meta(name);
      expect(meta.history.at(-1)!.trainLoss, name).toBeLessThan(meta.history[0]!.trainLoss);
    }
    expect(r.meta("narrow-deep-dkd").loss).toEqual({ name: "dkd", options: { temperature: 4, alpha: 1, beta: 2 } });
    expect(r.meta("narrow-deep-at").loss).toEqual({ name: "at", options: { beta: 1000, p: 2 } });
    // Both add a distillation term to the cross-entropy they log beside it.
    for (const name of ["narrow-deep-dkd", "narrow-deep-at"]) {
      const last = r.meta(name).history.at(-1)!;
      expect(last.trainLoss, name).toBeGreaterThan(last.trainCrossEntropy!);
    }
    expect(r.meta("narrow-deep-at").teacher).toBeUndefined(); // no soft targets: the features came from the tfjs teacher
    expect(r.lines.some((l) => /teacher: .*teacher\/checkpoint\.ndckpt in tfjs for its features/.test(l))).toBe(true);
    expect(r.report.architectures.map((a) => a.method)).toEqual(["kd", "dkd", "at"]);
    expect(r.report.architectures.every((a) => a.kdGain?.n === 1)).toBe(true);
    expect(Object.keys(r.report.kdGain)).toEqual(["narrow-deep"]);
    const md = readFileSync(join(r.runDir, "report.md"), "utf8");
    expect(md).toMatch(
      /\| narrow-deep-dkd \| student \| narrow-deep x0.25 \| dkd \(temperature=4, alpha=1, beta=2\) \|/,
    );
    expect(md).toMatch(
      /\| narrow-deep \(at\) \| [\d.]+k \| [\d.]+k \| [\d.]+ \| [\d.]+ \| [+-][\d.]+ \| 1 \| 1: [+-][\d.]+ \|/,
    );
  });

  it("refuses methods that do not exist or do not fit the data or the teacher", () => {
    const config = (flags: Partial<DistillConfig>) => resolveConfig({ preset: "quick", flags }).config;
    expect(() => checkMethods(config({ loss: ["kd", "fitnets"] }))).toThrow(
      /unknown method "fitnets" \(known: ce, kd, dkd, at, bce, mlkd\)/,
    );
    expect(() => checkMethods(config({ loss: ["ce"] }))).toThrow(/ce trains on the labels alone: that is the baseline/);
    expect(() => checkMethods(config({ loss: ["dkd", "dkd"] }))).toThrow(/lists dkd twice/);
    expect(() => checkMethods(config({ loss: ["dkd"], lossOptions: { dkd: { gamma: 1 } } }))).toThrow(
      /lossOptions: loss "dkd" has no option "gamma"/,
    );
    expect(() => checkMethods(config({ loss: ["kd"], lossOptions: { at: { beta: 1 } } }))).toThrow(
      /lossOptions: at is not among the methods of --loss \(kd\)/,
    );
    expect(() => checkMethods(config({ dataset: "voc", loss: ["kd"] }))).toThrow(
      /kd is for single-label data, and voc is multi-label \(its method: mlkd\)/,
    );
    expect(() => checkMethods(config({ loss: ["mlkd"] }))).toThrow(
      /mlkd is for multi-label data, and fashion-mnist is single-label/,
    );
    expect(() => checkMethods(config({ loss: ["at"] }), "t.onnx")).toThrow(
      /at compares the teacher's intermediate tensors, which an ONNX teacher file does not give/,
    );
    // The flags: --loss a list, --loss-options method.option=value pairs.
    expect(parseFlag("--loss", () => "kd,dkd")).toEqual({ key: "loss", value: ["kd", "dkd"] });
    expect(parseFlag("--loss-options", () => "dkd.beta=8,dkd.alpha=0.5,at.p=1")).toEqual({
      key: "lossOptions",
      value: { dkd: { beta: 8, alpha: 0.5 }, at: { p: 1 } },
    });
    expect(() => parseFlag("--loss-options", () => "dkd=8")).toThrow(
      /--loss-options: lossOptions must map methods to options with numeric values, such as dkd.beta=8/,
    );
    expect(() => parseFlag("--input-size", () => "32x")).toThrow(
      /--input-size: inputSize must be a size such as "32" or "64x48"/,
    );
  });

  it("distils a folder of images from an ONNX teacher made elsewhere and exports the student with the folder's classes", async () => {
    const data = temp("folder");
    const classes = ["ant", "bee", "cat"];
    writeImageFolder(data, { classes, train: 12, val: 2, test: 3 });
    // An NHWC Gemm classifier of 12x12 RGB images, normalized its own way (said by flags).
    const teacher = join(temp("teacher"), "pytorch-teacher.onnx");
    writeFileSync(teacher, gemmTeacher({ h: 12, w: 12, c: 3, classes: 3, output: "output" }).bytes);
    const r = await run(
      {
        ...tiny,
        dataset: "folder",
        data,
        students: ["wide"],
        epochs: 2,
        teacherMean: [0.5, 0.5, 0.5],
        teacherStd: [0.25, 0.25, 0.25],
      },
      teacher,
    );
    expect(planSubRuns(r.config).map((s) => s.name)).toContain("wide-kd");
    const kd = r.meta("wide-kd");
    expect(kd.dataset).toMatchObject({
      name: "folder",
      labels: classes,
      trainSamples: 36,
      valSamples: 6,
      testSamples: 9,
    });
    expect(kd.teacher?.engine).toMatch(/onnxruntime-node \(CPU\), ONNX file/);
    expect(r.lines.join("\n")).toMatch(
      /teacher: .*pytorch-teacher\.onnx \(layout NHWC \(input shape\); input "image" 12x12 \(input shape\); normalization from the flags; classes: it names none, so its outputs are taken to be the data set's classes in order \(pass --teacher-labels if not\); output "output"; on 9 test images: top-1 [\d.]+%\)/,
    );

    const models = temp("models");
    const { manifest, entries } = await exportRun(r.runDir, { modelsDir: models, log: () => {} });
    const student = entries.find((e) => e.name === "wide")!;
    expect(student.labels).toEqual(classes);
    expect(student.input.shape).toEqual([-1, 3, 12, 12]);
    expect(student.outputActivation).toBeUndefined();
    // The ONNX teacher is the manifest's teacher, as the teacher host serves it: its own input, the two outputs.
    const t = manifest.models.find((m) => m.role === "teacher")!;
    expect(t).toMatchObject({
      name: "teacher",
      architecture: "onnx",
      labels: classes,
      input: { name: "image", shape: [-1, 12, 12, 3], layout: "NHWC" },
      normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    });
    expect(t.outputs.map((x) => x.name)).toEqual(["logits", "probabilities"]);
    expect(t.export!.maxAbsLogitDiff).toBeLessThan(1e-4);
    expect(t.metrics.accuracy!.samples).toBe(9);
    expect(
      parseManifest(JSON.parse(readFileSync(join(models, "manifest.json"), "utf8"))).models.map((m) => m.name),
    ).toEqual(manifest.models.map((m) => m.name));
  });

  it("takes its own exported teacher as --teacher (npm run distill exits 0 and exports), its classes mapped to the folder's order; a wrong order teaches wrong classes", async () => {
    // A teacher trained and exported by this project on a folder whose classes are ant, bee, cat.
    const teacherData = temp("teacher-data");
    writeImageFolder(teacherData, { classes: ["ant", "bee", "cat"], train: 16, val: 2, test: 6 });
    // (A manifest holds at least one student: a one-epoch baseline goes with it.)
    const t = await run(
      { ...tiny, dataset: "folder", data: teacherData, students: ["wide"], teacherEpochs: 8, epochs: 1 },
      undefined,
      ["teacher", "wide-baseline"],
    );
    const teacherModels = temp("teacher-models");
    await exportRun(t.runDir, { modelsDir: teacherModels, log: () => {} });
    const teacher = join(teacherModels, "teacher.onnx");

    // The students' folder: the same kinds of images, "cat" spelled "Cat", so that in code-point order
    // its classes are Cat, ant, bee: every class at another index than in the teacher.
    const data = temp("student-data");
    writeImageFolder(data, { classes: ["ant", "bee", "Cat"], train: 16, val: 2, test: 6 });
    // KD alone (alpha 1): what the students know of the classes comes from the teacher.
    const common = [
      "--dataset",
      "folder",
      "--data",
      data,
      "--teacher",
      teacher,
      "--students",
      "wide",
      "--width-scale",
      "0.25",
      "--epochs",
      "15",
      "--batch-size",
      "16",
      "--no-augment",
      "--alpha",
      "1",
      "--backend",
      "wasm",
      "--replicas",
      "1",
      "--no-progress",
    ];
    const mapped = await distill([...common, "--run-dir", join(temp("mapped"), "run")]);
    expect(mapped.code, mapped.output).toBe(0);
    expect(mapped.output).toMatch(
      /classes from its metadata: in another order: its outputs are permuted to the data set's class order; 1 matched ignoring case and all but letters and digits \("cat" = "Cat"\)/,
    );
    expect(mapped.output).toMatch(
      /export: teacher: .*teacher\.onnx with outputs logits and probabilities, its classes permuted to the data set's order/,
    );

    // Told the wrong order (the folder's own, as if the file's outputs were already in it).
    const wrong = join(temp("labels"), "labels.txt");
    writeFileSync(wrong, "Cat\nant\nbee\n");
    const unmapped = await distill([...common, "--teacher-labels", wrong, "--run-dir", join(temp("unmapped"), "run")]);
    expect(unmapped.code, unmapped.output).toBe(0);
    expect(unmapped.output).toMatch(/classes from --teacher-labels: in the data set's order/);

    const accuracy = (runDir: string) => {
      const manifest = parseManifest(JSON.parse(readFileSync(join(runDir, "models", "manifest.json"), "utf8")));
      const of = (name: string) => manifest.models.find((m) => m.name === name)!.metrics.accuracy!.top1;
      expect(manifest.models.find((m) => m.name === "teacher")!.labels).toEqual(["Cat", "ant", "bee"]);
      return { teacher: of("teacher"), student: of("wide"), baseline: of("wide-baseline") };
    };
    const [right, wrongly] = [accuracy(join(mapped.runDir)), accuracy(join(unmapped.runDir))];
    // 18 test images, 6 a class: the mapped teacher and its student are right, the unmapped ones
    // wrong on nearly every image (each class is read as another); the baseline never saw the teacher.
    expect(right.teacher).toBeGreaterThanOrEqual(0.9);
    expect(wrongly.teacher).toBeLessThanOrEqual(0.1);
    expect(right.student).toBeGreaterThanOrEqual(0.8);
    expect(wrongly.student).toBeLessThanOrEqual(0.2);
    expect(wrongly.baseline).toBe(right.baseline);
  });

  it("trains a multi-label student on a VOC folder and exports sigmoid probabilities with the mAP", async () => {
    const data = temp("voc");
    writeVoc(data, ["dog", "cat", "person"], { train: 48, val: 16 });
    const r = await run({ ...tiny, dataset: "voc", data, holdout: 0.2, students: ["narrow-deep"], loss: ["mlkd"] });
    expect(planSubRuns(r.config).map((s) => [s.name, s.spec.loss.name])).toEqual([
      ["teacher", "bce"],
      ["narrow-deep-mlkd", "mlkd"],
      ["narrow-deep-baseline", "bce"],
    ]);
    for (const name of ["teacher", "narrow-deep-mlkd", "narrow-deep-baseline"]) {
      const meta = r.meta(name);
      expect(meta.dataset.multiLabel).toBe(true);
      expect(meta.history.at(-1)!.trainLoss, name).toBeLessThan(meta.history[0]!.trainLoss);
      expect(meta.history.at(-1)!.testMap, name).toBeGreaterThan(0);
      expect(meta.history.every((h) => h.valMap !== undefined)).toBe(true);
    }
    expect(r.lines.some((l) => /teacher epoch 3\/3: .*val acc [\d.]+% mAP [\d.]+%/.test(l))).toBe(true);

    const models = temp("voc-models");
    const { entries } = await exportRun(r.runDir, { modelsDir: models, log: () => {} });
    const student = entries.find((e) => e.name === "narrow-deep-mlkd")!;
    expect(entries.find((e) => e.name === "narrow-deep-baseline")).toBeDefined();
    expect(student.outputActivation).toBe("sigmoid");
    expect(student.labels).toHaveLength(20);
    expect(student.metrics.accuracy!.mAP).toBeCloseTo(r.meta("narrow-deep-mlkd").history.at(-1)!.testMap!, 4);
    // The file answers per-class sigmoids of its logits.
    const session = await ort.InferenceSession.create(join(models, student.file));
    const out = await session.run({
      input: new ort.Tensor("float32", new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]),
    });
    const [logits, probabilities] = [out.logits!.data as Float32Array, out.probabilities!.data as Float32Array];
    logits.forEach((z, i) => {
      expect(probabilities[i]).toBeCloseTo(1 / (1 + Math.exp(-z)), 5);
    });
    await session.release();
    const stored = parseManifest(JSON.parse(readFileSync(join(models, "manifest.json"), "utf8"))).models.find(
      (m) => m.name === student.name,
    )!;
    expect(stored.outputActivation).toBe("sigmoid");
    expect(stored.metrics.accuracy!.mAP).toBe(student.metrics.accuracy!.mAP);
  });
});
