// Trained checkpoints -> verified ONNX models in models/ with their manifest entries.
//
// For each checkpoint: encode it (model/to-onnx.ts), run onnx.checker on it when python3-onnx is there
// (checker.ts), compare it with the tfjs forward pass on the first PARITY_SAMPLES test images
// (verify.ts), and measure its own top-1 on the test split with onnxruntime. Only when every model
// passes are the files and the manifest written, as one transaction (store.ts). What is generated
// from the manifest (the Worker's bundle, the README's table, the plot) is the commands' to redo
// (scripts/generated-from-manifest.ts).
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Manifest, type ModelEntry, type SeedAccuracy, MODEL_NAME_PATTERN } from "../../models/schema.ts";
import { makeBatch, normalizationTable } from "../data/batches.ts";
import { type Dataset, type ImageSet, DataError } from "../data/dataset.ts";
import { fileSetOptions, loadDataset, openDataset } from "../data/index.ts";
import type { DistillConfig } from "../config/schema.ts";
import { multiLabelAccuracy } from "./multi-label.ts";
import { exportOnnxTeacher } from "./ship-onnx-teacher.ts";
import { isOnnxFile } from "../train/open-teacher.ts";
import { Rng } from "../data/rng.ts";
import { type Engine, currentEngine, initBackend } from "../engine/backend.ts";
import { disposeModel } from "../model/forward.ts";
import { withTfjsConvolutions } from "../engine/native-conv.ts";
import { type Checkpoint, CHECKPOINT_EXTENSION, loadCheckpoint } from "../train/checkpoint.ts";
import { CONFIG_FILE, readRunFile } from "../train/run-dir.ts";
import { spread } from "../train/report.ts";
import { modelFromCheckpoint } from "../train/teacher.ts";
import { runOnnxChecker } from "./checker.ts";
import { type ServingChoice, downgrade, manifestName, mergeEntries, modelEntry } from "./entry.ts";
import { type CalibrationSettings, type Int8Settings, Int8ParityError, int8Variant } from "./int8.ts";
import { DEFAULT_OPSET, graphToOnnx } from "../model/to-onnx.ts";
import { type ModelFile, readManifest, updateModels } from "./store.ts";
import { writeTritonRepository } from "./triton.ts";
import type { Images } from "../data/layout.ts";
import { ExportVerificationError, PARITY_SAMPLES, assertParity, measureParity, onnxAccuracy, openSession } from "./verify.ts";

export { ExportVerificationError } from "./verify.ts";

/** An export that would replace better-trained models without --force. */
export class ExportRefusedError extends Error {
  override name = "ExportRefusedError";
}
export { UnsupportedLayerError } from "../model/to-onnx.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const DEFAULT_MODELS_DIR = join(REPO, "models");

export interface ExportOptions extends ServingChoice {
  /** Where models and manifest.json go; default: this repository's models/. */
  modelsDir?: string;
  /** Where the run's data set is read from; default: the data set's standard location. */
  dataDir?: string;
  /** Test images compared between tfjs and onnxruntime (default 512). */
  paritySamples?: number;
  /** Test images the exported model's accuracy is measured on; 0 (default) = the whole test split. */
  accuracySamples?: number;
  opset?: number;
  /** tfjs backend of the reference forward pass; default: the one running, else node, wasm or cpu. */
  backend?: string;
  /** Manifest name instead of the one derived from the checkpoint (exportCheckpoint only). */
  name?: string;
  /** Export checkpoints of sub-runs that have not done all their epochs. */
  allowUnfinished?: boolean;
  /** Replace models in the manifest trained on more images or for more epochs than the new ones. */
  force?: boolean;
  /** Also write an int8 (QDQ) variant of every student, "<name>-int8" (default true). */
  int8?: boolean;
  /** How the int8 variants' activation ranges are calibrated on training images. */
  calibration?: CalibrationSettings;
  /** How the int8 variants' weights are stored and where their native figure is measured. */
  int8Settings?: Int8Settings;
  log?: (line: string) => void;
}

export interface ExportResult {
  modelsDir: string;
  /** The entries written, one per exported model. */
  entries: ModelEntry[];
  manifest: Manifest;
}

interface Source {
  path: string;
  ckpt: Checkpoint;
  run: RunInfo;
  /** Set when this checkpoint is the one shipped of several seeds of the same model. */
  seeds?: SeedAccuracy;
}

/** Exports one checkpoint file. */
export async function exportCheckpoint(path: string, options: ExportOptions = {}): Promise<ExportResult> {
  if (options.name !== undefined && !MODEL_NAME_PATTERN.test(options.name)) {
    throw new Error(`model name "${options.name}" must be lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  const ckpt = loadCheckpoint(path);
  refuseUnfinished(path, ckpt, options);
  return exportSources([{ path, ckpt, run: runOf(path) }], options);
}

/** Exports the final checkpoint of every sub-run (teacher and students) in a run directory. */
export async function exportRun(runDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new Error(`${runDir}: run directory not found`);
  if (options.name !== undefined) throw new Error("a model name can only be given when exporting one checkpoint");
  const run = runInfo(runDir);
  const latest = new Map<string, Source>();
  for (const path of findCheckpoints(runDir)) {
    const ckpt = loadCheckpoint(path);
    const prev = latest.get(ckpt.meta.name);
    if (!prev || ckpt.meta.step > prev.ckpt.meta.step) latest.set(ckpt.meta.name, { path, ckpt, run });
  }
  if (latest.size === 0) throw new Error(`${runDir}: no checkpoints (*${CHECKPOINT_EXTENSION}) found; train first (npm run distill)`);
  for (const s of latest.values()) refuseUnfinished(s.path, s.ckpt, options);
  // A teacher given as an ONNX file goes into the manifest with the students it taught.
  const teacherFile = run.teacher && isOnnxFile(run.teacher) ? run.teacher : undefined;
  if (![...latest.values()].some((s) => s.ckpt.meta.role === "teacher")) {
    (options.log ?? console.log)(teacherFile ? `export: ${runDir} distilled from the ONNX file ${teacherFile}: it becomes the manifest's teacher` : `export: ${runDir} has no teacher sub-run (distilled from a teacher of another run?); the manifest keeps its teacher`);
  }
  return exportSources(oneSeedEach([...latest.values()], options.log ?? console.log), options, teacherFile);
}

/**
 * Sub-runs that are the same model trained with different seeds (same manifest name) ship as one:
 * the seed whose test accuracy is closest to their mean, carrying every seed's figure.
 */
function oneSeedEach(sources: Source[], log: (line: string) => void): Source[] {
  const groups = new Map<string, Source[]>();
  for (const s of sources) {
    const name = manifestName(s.ckpt.meta);
    groups.set(name, [...(groups.get(name) ?? []), s]);
  }
  return [...groups].map(([name, members]) => {
    if (members.length === 1) return members[0]!;
    const bySeed: Record<string, number> = {};
    for (const m of members) {
      const acc = m.ckpt.meta.history.at(-1)?.testAccuracy;
      const seed = Number(m.ckpt.meta.config.seed);
      if (acc === undefined) throw new Error(`${m.path}: ${m.ckpt.meta.name} has no test accuracy yet; finish it before exporting its seeds`);
      if (String(seed) in bySeed) throw new Error(`${name}: two sub-runs with seed ${seed} (${m.path})`);
      bySeed[String(seed)] = acc;
    }
    const { mean, sd, n } = spread(Object.values(bySeed))!;
    const pick = members.reduce((best, m) => (Math.abs(bySeed[String(m.ckpt.meta.config.seed)]! - mean) < Math.abs(bySeed[String(best.ckpt.meta.config.seed)]! - mean) ? m : best));
    const shipped = Number(pick.ckpt.meta.config.seed);
    log(`export: ${name}: ${members.length} seeds, test ${(100 * mean).toFixed(2)} ± ${(100 * sd).toFixed(2)}%; shipping seed ${shipped} (${(100 * bySeed[String(shipped)]!).toFixed(2)}%, the closest to the mean)`);
    return { ...pick, seeds: { mean, sd, n, bySeed, shipped } };
  });
}

function refuseUnfinished(path: string, ckpt: Checkpoint, options: ExportOptions): void {
  if (ckpt.meta.done || options.allowUnfinished) return;
  throw new Error(`${path}: ${ckpt.meta.name} has not finished training (${ckpt.meta.epoch} epochs done); resume it with npm run distill, or pass --allow-unfinished`);
}

/** Checkpoint files in a run directory and its sub-run directories (hidden folders skipped). */
function findCheckpoints(dir: string, depth = 3): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    const stat = statSync(path);
    if (stat.isDirectory() && depth > 0) found.push(...findCheckpoints(path, depth - 1));
    else if (stat.isFile() && name.endsWith(CHECKPOINT_EXTENSION)) found.push(path);
  }
  return found;
}

/** What the run directory says about its run: its id (the directory's name), preset and data location. */
interface RunInfo {
  id: string;
  preset?: string;
  dataDir?: string;
  /** The run's configuration: how its data set of image files was read. */
  config?: DistillConfig;
  /** The teacher the run distilled from when it trained none (--teacher FILE), as its run file records it. */
  teacher?: string;
}

function runInfo(runDir: string): RunInfo {
  const id = basename(resolve(runDir));
  if (!existsSync(join(runDir, CONFIG_FILE))) return { id };
  const { preset, config, teacher } = readRunFile(runDir);
  return { id, preset, dataDir: config.data ?? undefined, config, ...(teacher ? { teacher } : {}) };
}

/** The run a checkpoint belongs to: the nearest folder above its own that holds a run's config.json, else its own folder. */
function runOf(checkpointPath: string): RunInfo {
  const own = dirname(resolve(checkpointPath));
  for (let dir = dirname(own); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, CONFIG_FILE))) return runInfo(dir);
  }
  return { id: basename(own) };
}

/** A path relative to the repository when inside it (manifests travel with the repository), else absolute. */
function repoPath(path: string): string {
  const rel = relative(REPO, resolve(path));
  return rel.startsWith("..") ? resolve(path) : rel;
}

/** Normalized NHWC floats of the first `limit` images of a set. */
function normalizedImages(set: ImageSet, normalization: { mean: number[]; std: number[] }, limit: number): { images: Images; labels: Uint8Array } {
  const count = Math.min(limit, set.count);
  const batch = makeBatch(set, Array.from({ length: count }, (_, i) => i), normalizationTable(normalization), null, new Rng(0));
  return { images: { data: batch.images, count, height: set.height, width: set.width, channels: set.channels }, labels: set.labels.subarray(0, count) };
}

/**
 * The tfjs engine the exports are compared with: the one asked for, else the one already running
 * (npm run distill), else the first exact-float32 CPU backend that loads. A GPU is never picked by
 * itself: TensorFlow's TF32 convolutions on recent GPUs differ from float32 by far more than 1e-4.
 */
async function referenceEngine(requested: string | undefined, log: (line: string) => void): Promise<Engine> {
  if (requested !== undefined && requested !== "auto") return initBackend(requested, { log });
  const running = currentEngine();
  if (running) return running;
  const skipped: string[] = [];
  for (const backend of ["node", "wasm", "cpu"]) {
    try {
      return await initBackend(backend, { log });
    } catch (err) {
      skipped.push((err as Error).message);
    }
  }
  throw new Error(`no tfjs CPU backend loads: ${skipped.join("; ")}`);
}

/** Everything one export run shares between its models. */
interface ExportContext {
  options: ExportOptions;
  opset: number;
  paritySamples: number;
  backend: string;
  log: (line: string) => void;
  datasets: Map<string, Dataset>;
}

/** The test split of the checkpoint's data set, loaded once per export, checked against the model. */
async function testSet({ ckpt, path, run }: Source, ctx: ExportContext): Promise<ImageSet> {
  const { graph, meta } = ckpt;
  let dataset = ctx.datasets.get(meta.dataset.name);
  if (!dataset) {
    // Image files are read as the run read them (same decoded sets, from memory in the distill
    // process); a checkpoint without its run at the size and channels its model takes.
    const { height, width, channels } = graph.input;
    const files = run.config ? fileSetOptions(run.config, ctx.log) : { ...fileSetOptions({}, ctx.log), size: { width, height }, channels: channels === 1 ? (1 as const) : (3 as const) };
    dataset = await openDataset(meta.dataset.name, ctx.options.dataDir ?? run.dataDir, files);
    ctx.datasets.set(meta.dataset.name, dataset);
  }
  const { height, width, channels } = graph.input;
  const test = dataset.test;
  if (test.height !== height || test.width !== width || test.channels !== channels) {
    throw new DataError(`${path}: the model takes ${height}x${width}x${channels} images, ${meta.dataset.name} has ${test.height}x${test.width}x${test.channels}`);
  }
  if (graph.numClasses !== meta.dataset.labels.length || graph.numClasses !== dataset.classes.length) {
    throw new DataError(`${path}: the model has ${graph.numClasses} classes, its labels ${meta.dataset.labels.length}, ${meta.dataset.name} ${dataset.classes.length}`);
  }
  return test;
}

/** One verified model: its manifest entry and file. */
interface Exported {
  entry: ModelEntry;
  file: ModelFile;
}

/**
 * Encodes one checkpoint and verifies it (ExportVerificationError when it does not pass), then makes
 * a student's int8 variant, which is left out, with the reason logged, when it strays from its twin.
 */
async function verifiedExport(source: Source, ctx: ExportContext): Promise<Exported[]> {
  const { path, ckpt, run, seeds } = source;
  const { graph, meta } = ckpt;
  const name = ctx.options.name ?? manifestName(meta);
  const what = `${name} (${path})`;
  const started = Date.now();
  ctx.log(`export: ${name}: encoding ${path} and checking it against tfjs...`);

  const onnx = graphToOnnx({ graph, tensors: new Map([...ckpt.weights].map(([k, t]) => [k, t.data])) }, {
    opset: ctx.opset,
    docString: `narrowdeep ${name}, run ${run.id}`,
    // What a runtime without our manifest needs to feed the model and read its answer.
    metadata: { input_layout: "NCHW", normalization: JSON.stringify(meta.dataset.normalization), labels: JSON.stringify(meta.dataset.labels), run: run.id, ...(meta.dataset.multiLabel ? { output_activation: "sigmoid" } : {}) },
    ...(meta.dataset.multiLabel ? { activation: "sigmoid" as const } : {}),
  });
  const checker = runOnnxChecker(onnx);
  if (checker.status === "failed") throw new ExportVerificationError(`${what}: onnx.checker rejects the export: ${checker.detail}`);
  if (checker.status === "unavailable") ctx.log(`export: ${name}: onnx.checker skipped (${checker.detail})`);

  // One normalized copy of the test images serves both checks: parity takes the first
  // paritySamples, accuracy the first accuracySamples (all by default).
  const test = await testSet(source, ctx);
  const accuracySamples = ctx.options.accuracySamples || test.count;
  const { images, labels } = normalizedImages(test, meta.dataset.normalization, Math.max(ctx.paritySamples, accuracySamples));
  const parityImages: Images = { ...images, count: Math.min(ctx.paritySamples, images.count) };
  const accuracyImages: Images = { ...images, count: Math.min(accuracySamples, images.count) };

  const session = await openSession(onnx);
  try {
    const model = modelFromCheckpoint(ckpt);
    const parity = await withTfjsConvolutions(() => measureParity(model, session, parityImages)).finally(() => disposeModel(model));
    assertParity(what, parity);
    const accuracy = test.targets ? await multiLabelAccuracy(session, accuracyImages, test.targets, graph.numClasses) : { top1: await onnxAccuracy(session, accuracyImages, labels, graph.numClasses) };
    const top1 = accuracy.top1;
    const check = { ...parity, opset: ctx.opset, exportedAt: new Date().toISOString(), ...(checker.status === "passed" ? { checker: `passed (${checker.detail})` } : {}) };
    const entry = modelEntry(ckpt, { name, version: run.id, onnx, check, accuracy: { ...accuracy, samples: accuracyImages.count }, ...(seeds ? { seeds } : {}), run: { id: run.id, preset: run.preset, checkpoint: repoPath(path), teacher: meta.teacher && { ...meta.teacher, checkpoint: repoPath(meta.teacher.checkpoint) } } });
    ctx.log(
      `export: ${name}: ${onnx.length} bytes, max |logit diff| ${parity.maxAbsLogitDiff.toExponential(2)} over ${parity.samples} images (tfjs ${ctx.backend} on its own kernels vs onnxruntime-node), ` +
        `top-1 agreement 100%, test top-1 ${(top1 * 100).toFixed(2)}% on ${accuracyImages.count} images, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    const fp32 = { entry, file: { file: entry.file, bytes: onnx } };
    if (ctx.options.int8 === false || meta.role !== "student") return [fp32];
    // int8 parity and accuracy are single-label (argmax); a sigmoid student stays fp32 for now.
    if (meta.dataset.multiLabel) {
      ctx.log(`export: no int8 variant of ${name}: multi-label students are not quantized`);
      return [fp32];
    }
    const train = ctx.datasets.get(meta.dataset.name)!.train;
    try {
      return [fp32, await int8Variant({ twin: entry, onnx, train, test: accuracyImages, labels, calibration: ctx.options.calibration, settings: ctx.options.int8Settings, log: ctx.log })];
    } catch (err) {
      if (!(err instanceof Int8ParityError)) throw err;
      ctx.log(`export: no int8 variant of ${name}: ${err.message}`);
      return [fp32];
    }
  } finally {
    await session.release();
  }
}

/** A run's teacher given as an ONNX file, as the manifest's teacher, on the test split its students were measured on. */
async function teacherFileExport(path: string, student: Source, ctx: ExportContext): Promise<{ entry: ModelEntry; file: ModelFile }> {
  const { meta } = student.ckpt;
  const test = await testSet(student, ctx);
  return exportOnnxTeacher({ path, config: student.run.config ?? {}, run: student.run, test, classes: meta.dataset.labels, normalization: meta.dataset.normalization, accuracySamples: ctx.options.accuracySamples, recordedPath: repoPath(path), log: ctx.log });
}

async function exportSources(sources: Source[], options: ExportOptions, teacherFile?: string): Promise<ExportResult> {
  const log = options.log ?? console.log;
  const engine = await referenceEngine(options.backend, log);
  const ctx: ExportContext = { options, opset: options.opset ?? DEFAULT_OPSET, paritySamples: options.paritySamples ?? PARITY_SAMPLES, backend: engine.backend, log, datasets: new Map() };

  // Every model is verified before anything is written.
  const exported: Exported[] = [];
  for (const source of sources) exported.push(...(await verifiedExport(source, ctx)));
  if (teacherFile) exported.push(await teacherFileExport(teacherFile, sources[0]!, ctx));
  return writeExport(exported, options);
}

/**
 * The int8 variants of the fp32 students of a models folder, made from their ONNX files (no
 * checkpoints needed) and measured on the data set their entries name. Written with their twins to
 * options.modelsDir (the twins are copied when that is another folder).
 */
export async function exportInt8Variants(sourceDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  if (options.int8 === false) throw new Error("int8 variants of a models folder were asked for with int8 off: nothing to export");
  if (options.name !== undefined) throw new Error("a model name can only be given when exporting one checkpoint");
  const log = options.log ?? console.log;
  const twins = readManifest(sourceDir).models.filter((m) => m.role === "student" && !m.quantization && m.outputActivation !== "sigmoid");
  if (twins.length === 0) throw new Error(`${sourceDir}: no fp32 single-label students in its manifest.json to quantize`);
  const copyTwins = resolve(sourceDir) !== resolve(options.modelsDir ?? DEFAULT_MODELS_DIR);
  const datasets = new Map<string, Dataset>();
  const exported: Exported[] = [];
  for (const twin of twins) {
    const path = join(sourceDir, twin.file);
    if (!existsSync(path)) throw new Error(`${twin.name}: its file ${path} does not exist`);
    const onnx = new Uint8Array(readFileSync(path));
    if (createHash("sha256").update(onnx).digest("hex") !== twin.sha256) throw new Error(`${path} does not match its manifest entry's sha256`);
    const name = twin.metrics.accuracy?.dataset;
    if (!name) throw new Error(`${twin.name}: its manifest entry names no data set (metrics.accuracy.dataset) to calibrate on`);
    const dataset = datasets.get(name) ?? loadDataset(name, options.dataDir);
    datasets.set(name, dataset);
    const [, channels, height, width] = twin.input.shape;
    const { test } = dataset;
    if (test.channels !== channels || test.height !== height || test.width !== width) throw new DataError(`${twin.name} takes ${height}x${width}x${channels} images, ${name} has ${test.height}x${test.width}x${test.channels}`);
    const { images, labels } = normalizedImages(test, twin.normalization, options.accuracySamples || test.count);
    if (copyTwins) exported.push({ entry: twin, file: { file: twin.file, bytes: onnx } });
    exported.push(await int8Variant({ twin, onnx, train: dataset.train, test: images, labels, calibration: options.calibration, settings: options.int8Settings, log }));
  }
  return writeExport(exported, options);
}

/** Writes verified models and their manifest entries as one transaction. */
function writeExport(exported: Exported[], options: ExportOptions): ExportResult {
  const log = options.log ?? console.log;
  const modelsDir = resolve(options.modelsDir ?? DEFAULT_MODELS_DIR);
  const entries = exported.map((e) => e.entry);
  const files = exported.map((e) => e.file);
  const manifest = updateModels(modelsDir, files, (current) => {
    const losses = options.force ? [] : entries.flatMap((e) => {
      const old = current.models.find((m) => m.name === e.name);
      const why = old ? downgrade(old, e) : null;
      return why ? [why] : [];
    });
    if (losses.length) throw new ExportRefusedError(`export to ${modelsDir} refused: ${losses.join("; ")} (pass --force to replace them, or --models-dir to export elsewhere)`);
    return mergeEntries(current, entries, options);
  });
  log(`export: wrote ${files.map((f) => f.file).join(", ")} and manifest.json to ${modelsDir} (default student: ${manifest.defaultStudent})`);
  for (const dir of writeTritonRepository(modelsDir, manifest)) log(`export: Triton model repository: ${dir} (docs/teacher.md)`);
  return { modelsDir, entries, manifest };
}
