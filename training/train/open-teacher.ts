// The teacher of a run's distilled students, opened once for all of them:
//   for its logits (kd, dkd, mlkd): a checkpoint of this project on the ONNX or tfjs engine
//     (teacher.ts), or any ONNX classifier file (load-onnx-teacher.ts); cached per augmented view;
//   for its features (at): a checkpoint as a tfjs model, whose intermediate tensors exist.
// Either way it sees the student's batch mapped to its own normalization.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { DistillConfig } from "../config/schema.ts";
import { type Batch, makeBatch, normalizationTable, viewCount } from "../data/batches.ts";
import type { PreparedData } from "../data/prepare.ts";
import { Rng } from "../data/rng.ts";
import { disposeModel, forwardWithFeatures } from "../model/forward.ts";
import { type Checkpoint, loadCheckpoint } from "./checkpoint.ts";
import { meanAveragePrecision, precisionAtOne } from "./map.ts";
import { loadOnnxTeacher, onnxTeacherOptions } from "./load-onnx-teacher.ts";
import { augmentation } from "./plan.ts";
import { firstDifference } from "./run-dir.ts";
import type { FeatureTeacher } from "../engine/step.ts";
import { type CachedTeacher, cacheTeacher } from "./teacher-cache.ts";
import { type Teacher, loadTeacher, modelFromCheckpoint } from "./teacher.ts";

type Normalization = PreparedData["normalization"];

/** A teacher given as an ONNX file rather than a checkpoint of this project. */
export const isOnnxFile = (path: string) => path.toLowerCase().endsWith(".onnx");

/** The first test images, normalized: the probe that checks a teacher before training. */
function probeBatch(data: PreparedData, count = 16): Batch {
  const n = Math.min(count, data.test.count);
  return makeBatch(
    data.test,
    Array.from({ length: n }, (_, i) => i),
    normalizationTable(data.normalization),
    null,
    new Rng(0),
  );
}

/**
 * A teacher trained on other data statistics sees its own normalization: the batch is mapped from
 * this run's normalization to the teacher's, x' = (x * std + mean - mean_t) / std_t per channel.
 */
export function withNormalization(teacher: Teacher, from: Normalization, to: Normalization): Teacher {
  if (firstDifference(from, to) === null) return teacher;
  const { scale, shift } = normalizationMap(from, to);
  const c = from.mean.length;
  return {
    ...teacher,
    logits: (batch) => {
      const images = batch.images.map((v, i) => v * scale[i % c]! + shift[i % c]!);
      return teacher.logits({ ...batch, images });
    },
  };
}

function normalizationMap(from: Normalization, to: Normalization): { scale: number[]; shift: number[] } {
  return {
    scale: from.std.map((s, k) => s / to.std[k]!),
    shift: from.mean.map((m, k) => (m - to.mean[k]!) / to.std[k]!),
  };
}

/** A finished teacher checkpoint trained on this run's data set, or an error saying what is wrong. */
export function teacherCheckpoint(path: string, data: PreparedData): Checkpoint {
  const ckpt = loadCheckpoint(path);
  if (!ckpt.meta.done)
    throw new Error(
      `${path}: the teacher has not finished training (${ckpt.meta.epoch} epochs done); resume the run first`,
    );
  const { height, width, channels } = ckpt.graph.input;
  if (
    ckpt.meta.dataset.name !== data.name ||
    ckpt.graph.numClasses !== data.classes.length ||
    height !== data.train.height ||
    width !== data.train.width ||
    channels !== data.train.channels
  ) {
    throw new Error(
      `${path}: the teacher was trained on ${ckpt.meta.dataset.name} (${height}x${width}x${channels}, ${ckpt.graph.numClasses} classes), not this run's ${data.name}`,
    );
  }
  return ckpt;
}

/** Top-1 (multi-label: precision at 1 and mAP) of a teacher's logits on a batch, for the log. */
async function sanity(teacher: Teacher, batch: Batch, classes: number): Promise<string> {
  const logits = await teacher.logits(batch);
  if (batch.targets)
    return `precision at 1 ${(100 * precisionAtOne(logits, batch.targets, classes)).toFixed(1)}%, mAP ${(100 * meanAveragePrecision(logits, batch.targets, classes).map).toFixed(1)}%`;
  let right = 0;
  for (let i = 0; i < batch.size; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (logits[i * classes + k]! > logits[i * classes + best]!) best = k;
    if (best === batch.labels[i]) right++;
  }
  return `top-1 ${((100 * right) / Math.max(1, batch.size)).toFixed(1)}%`;
}

/**
 * The key of a cache of soft targets: a hash of everything the teacher's logits for a view key
 * depend on (the teacher file and engine, how it reads its input, the training images in order, the
 * normalization and the augmentation that numbers the views).
 */
export function cacheKey(path: string, engine: string, config: DistillConfig, data: PreparedData): string {
  const hash = createHash("sha256");
  const { images, labels, count, height, width, channels } = data.train;
  hash.update(readFileSync(path));
  hash.update(
    JSON.stringify({
      engine,
      onnx: isOnnxFile(path) ? onnxTeacherOptions(config) : null,
      data: data.name,
      classes: data.classes,
      count,
      height,
      width,
      channels,
      normalization: data.normalization,
      augmentation: augmentation(config, "student"),
    }),
  );
  hash.update(images);
  hash.update(labels);
  return hash.digest("hex").slice(0, 32);
}

/**
 * The teacher of the logit-based methods, checked, in the run's normalization, cached when it can be;
 * the cache is kept in `cacheDir` when given, so that a resumed run or another process reuses it.
 */
export async function openLogitsTeacher(
  path: string,
  config: DistillConfig,
  data: PreparedData,
  log: (line: string) => void,
  cacheDir?: string,
): Promise<Teacher | CachedTeacher> {
  let teacher: Teacher;
  let about: string;
  if (isOnnxFile(path)) {
    if (config.teacherEngine === "tfjs")
      throw new Error(`${path}: an ONNX teacher runs on onnxruntime-node, not --teacher-engine tfjs`);
    const { train } = data;
    const file = await loadOnnxTeacher(
      path,
      onnxTeacherOptions(config),
      {
        classes: data.classes,
        height: train.height,
        width: train.width,
        channels: train.channels,
        normalization: data.normalization,
      },
      probeBatch(data),
    );
    teacher = withNormalization(file, data.normalization, file.spec.normalization);
    const check = probeBatch(data, 256);
    about = `${file.spec.sources.join("; ")}; on ${check.size} test images: ${await sanity(teacher, check, data.classes.length)}`;
  } else {
    const ckpt = teacherCheckpoint(path, data);
    teacher = {
      ...withNormalization(
        await loadTeacher(ckpt, config.teacherEngine, probeBatch(data), log),
        data.normalization,
        ckpt.meta.dataset.normalization,
      ),
      source: path,
    };
    about = `test acc ${((ckpt.meta.history.at(-1)?.testAccuracy ?? 0) * 100).toFixed(2)}%`;
  }
  const views = viewCount(augmentation(config, "student"));
  let cached: CachedTeacher | null = null;
  if (config.teacherCache !== false && views !== null) {
    const key = cacheDir && cacheKey(path, teacher.engine, config, data);
    const file = key ? { path: join(cacheDir, `teacher-logits-${key}.bin`), key } : undefined;
    cached = cacheTeacher(teacher, data.train.count, views, data.classes.length, { file });
    if (cached && file) log(`teacher cache: ${file.path}, ${cached.stats().loaded} views read from earlier runs`);
  }
  log(`teacher: ${path} (${about}), soft targets by ${(cached ?? teacher).engine}`);
  return cached ?? teacher;
}

/** The teacher of the feature methods: the checkpoint's tfjs model in inference mode. */
export function openFeatureTeacher(
  path: string,
  data: PreparedData,
  log: (line: string) => void,
): { features: FeatureTeacher; dispose: () => void } {
  if (isOnnxFile(path))
    throw new Error(
      `${path}: feature methods (at) compare the teacher's intermediate tensors, which need a teacher checkpoint (.ndckpt) run in tfjs, not an ONNX file`,
    );
  const ckpt = teacherCheckpoint(path, data);
  const model = modelFromCheckpoint(ckpt);
  const { scale, shift } = normalizationMap(data.normalization, ckpt.meta.dataset.normalization);
  const same = firstDifference(data.normalization, ckpt.meta.dataset.normalization) === null;
  log(`teacher: ${path} in tfjs for its features`);
  return {
    features: (images, layers) => {
      const x = same ? images : (tf.add(tf.mul(images, tf.tensor1d(scale)), tf.tensor1d(shift)) as tf.Tensor4D);
      return forwardWithFeatures(model, x, { training: false }, layers(model.graph)).features;
    },
    dispose: () => disposeModel(model),
  };
}
