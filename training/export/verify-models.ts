// Verifying what is exported, before anything is written: each checkpoint is encoded
// (model/to-onnx.ts), run through onnx.checker when python3-onnx is there (checker.ts), compared with
// the tfjs forward pass on the first PARITY_SAMPLES test images (verify.ts), and its own top-1
// measured on the test split with onnxruntime; a student also gets its int8 variant (int8.ts).
import type { ModelEntry } from "../../models/schema.ts";
import { makeBatch, normalizationTable } from "../data/batches.ts";
import { type Dataset, type ImageSet, DataError } from "../data/dataset.ts";
import { fileSetOptions, openDataset } from "../data/index.ts";
import type { Images } from "../data/layout.ts";
import { Rng } from "../data/rng.ts";
import { type Engine, currentEngine, initBackend } from "../engine/backend.ts";
import { withTfjsConvolutions } from "../engine/native-conv.ts";
import { disposeModel } from "../model/forward.ts";
import { DEFAULT_OPSET, graphToOnnx } from "../model/to-onnx.ts";
import { modelFromCheckpoint } from "../train/teacher.ts";
import { runOnnxChecker } from "./checker.ts";
import type { Source } from "./discover.ts";
import { manifestName, modelEntry } from "./entry.ts";
import { Int8ParityError, int8Variant } from "./int8.ts";
import { multiLabelAccuracy } from "./multi-label.ts";
import { type ExportOptions, repoPath } from "./options.ts";
import { exportOnnxTeacher } from "./ship-onnx-teacher.ts";
import type { ModelFile } from "./store.ts";
import {
  ExportVerificationError,
  PARITY_SAMPLES,
  assertParity,
  measureParity,
  onnxAccuracy,
  openSession,
} from "./verify.ts";

/** Every source encoded and verified (ExportVerificationError at the first that does not pass), with a teacher file's entry when the run has one. */
export async function verifyModels(
  sources: Source[],
  options: ExportOptions,
  teacherFile?: string,
): Promise<Exported[]> {
  const log = options.log ?? console.log;
  const engine = await referenceEngine(options.backend, log);
  const ctx: ExportContext = {
    options,
    opset: options.opset ?? DEFAULT_OPSET,
    paritySamples: options.paritySamples ?? PARITY_SAMPLES,
    backend: engine.backend,
    log,
    datasets: new Map(),
  };
  const exported: Exported[] = [];
  for (const source of sources) exported.push(...(await verifiedExport(source, ctx)));
  if (teacherFile) exported.push(await teacherFileExport(teacherFile, sources[0]!, ctx));
  return exported;
}

/** Normalized NHWC floats of the first `limit` images of a set. */
export function normalizedImages(
  set: ImageSet,
  normalization: { mean: number[]; std: number[] },
  limit: number,
): { images: Images; labels: Uint8Array } {
  const count = Math.min(limit, set.count);
  const batch = makeBatch(
    set,
    Array.from({ length: count }, (_, i) => i),
    normalizationTable(normalization),
    null,
    new Rng(0),
  );
  return {
    images: { data: batch.images, count, height: set.height, width: set.width, channels: set.channels },
    labels: set.labels.subarray(0, count),
  };
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
    const files = run.config
      ? fileSetOptions(run.config, ctx.log)
      : {
          ...fileSetOptions({}, ctx.log),
          size: { width, height },
          channels: channels === 1 ? (1 as const) : (3 as const),
        };
    dataset = await openDataset(meta.dataset.name, ctx.options.dataDir ?? run.dataDir, files);
    ctx.datasets.set(meta.dataset.name, dataset);
  }
  const { height, width, channels } = graph.input;
  const test = dataset.test;
  if (test.height !== height || test.width !== width || test.channels !== channels) {
    throw new DataError(
      `${path}: the model takes ${height}x${width}x${channels} images, ${meta.dataset.name} has ${test.height}x${test.width}x${test.channels}`,
    );
  }
  if (graph.numClasses !== meta.dataset.labels.length || graph.numClasses !== dataset.classes.length) {
    throw new DataError(
      `${path}: the model has ${graph.numClasses} classes, its labels ${meta.dataset.labels.length}, ${meta.dataset.name} ${dataset.classes.length}`,
    );
  }
  return test;
}

/** One verified model: its manifest entry and file. */
export interface Exported {
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

  const onnx = graphToOnnx(
    { graph, tensors: new Map([...ckpt.weights].map(([k, t]) => [k, t.data])) },
    {
      opset: ctx.opset,
      docString: `narrowdeep ${name}, run ${run.id}`,
      // What a runtime without our manifest needs to feed the model and read its answer.
      metadata: {
        input_layout: "NCHW",
        normalization: JSON.stringify(meta.dataset.normalization),
        labels: JSON.stringify(meta.dataset.labels),
        run: run.id,
        ...(meta.dataset.multiLabel ? { output_activation: "sigmoid" } : {}),
      },
      ...(meta.dataset.multiLabel ? { activation: "sigmoid" as const } : {}),
    },
  );
  const checker = runOnnxChecker(onnx);
  if (checker.status === "failed")
    throw new ExportVerificationError(`${what}: onnx.checker rejects the export: ${checker.detail}`);
  if (checker.status === "unavailable") ctx.log(`export: ${name}: onnx.checker skipped (${checker.detail})`);

  // One normalized copy of the test images serves both checks: parity takes the first
  // paritySamples, accuracy the first accuracySamples (all by default).
  const test = await testSet(source, ctx);
  const accuracySamples = ctx.options.accuracySamples || test.count;
  const { images, labels } = normalizedImages(
    test,
    meta.dataset.normalization,
    Math.max(ctx.paritySamples, accuracySamples),
  );
  const parityImages: Images = { ...images, count: Math.min(ctx.paritySamples, images.count) };
  const accuracyImages: Images = { ...images, count: Math.min(accuracySamples, images.count) };

  const session = await openSession(onnx);
  try {
    const model = modelFromCheckpoint(ckpt);
    const parity = await withTfjsConvolutions(() => measureParity(model, session, parityImages)).finally(() =>
      disposeModel(model),
    );
    assertParity(what, parity);
    const accuracy = test.targets
      ? await multiLabelAccuracy(session, accuracyImages, test.targets, graph.numClasses)
      : { top1: await onnxAccuracy(session, accuracyImages, labels, graph.numClasses) };
    const top1 = accuracy.top1;
    const check = {
      ...parity,
      opset: ctx.opset,
      exportedAt: new Date().toISOString(),
      ...(checker.status === "passed" ? { checker: `passed (${checker.detail})` } : {}),
    };
    const entry = modelEntry(ckpt, {
      name,
      version: run.id,
      onnx,
      check,
      accuracy: { ...accuracy, samples: accuracyImages.count },
      ...(seeds ? { seeds } : {}),
      run: {
        id: run.id,
        preset: run.preset,
        checkpoint: repoPath(path),
        teacher: meta.teacher && { ...meta.teacher, checkpoint: repoPath(meta.teacher.checkpoint) },
      },
    });
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
      return [
        fp32,
        await int8Variant({
          twin: entry,
          onnx,
          train,
          test: accuracyImages,
          labels,
          calibration: ctx.options.calibration,
          settings: ctx.options.int8Settings,
          log: ctx.log,
        }),
      ];
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
async function teacherFileExport(
  path: string,
  student: Source,
  ctx: ExportContext,
): Promise<{ entry: ModelEntry; file: ModelFile }> {
  const { meta } = student.ckpt;
  const test = await testSet(student, ctx);
  return exportOnnxTeacher({
    path,
    config: student.run.config ?? {},
    run: student.run,
    test,
    classes: meta.dataset.labels,
    normalization: meta.dataset.normalization,
    accuracySamples: ctx.options.accuracySamples,
    recordedPath: repoPath(path),
    log: ctx.log,
  });
}
