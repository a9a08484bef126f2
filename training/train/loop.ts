// Trains one model (one sub-run: the teacher, or one student with one loss) to the end, with a
// checkpoint after every epoch and every `checkpointMinutes`, resuming from the checkpoint when there
// is one. Resuming continues exactly: weights, batch-norm statistics, optimizer slots, step, epoch,
// position inside the epoch and the augmentation RNG all come back, and each epoch's image order is
// a function of (seed, epoch) alone, so an interrupted run ends in the same state as one left alone.
import * as tf from "@tensorflow/tfjs";
import { type Augmentation, type Batch, makeBatch, normalizationTable } from "../data/batches.ts";
import type { PreparedData } from "../data/prepare.ts";
import { Rng } from "../data/rng.ts";
import { lossMisfit } from "../losses/fit.ts";
import { type Loss, createLoss } from "../losses/index.ts";
import { type Model, createModel, disposeModel } from "../model/forward.ts";
import type { Graph } from "../model/graph.ts";
import { architecture } from "../model/resnet.ts";
import {
  type Checkpoint,
  type CheckpointMeta,
  type DatasetInfo,
  type EpochMetrics,
  type PartialEpoch,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import { evaluate } from "./evaluate.ts";
import type { ModelIdentity } from "./identity.ts";
import type { StoredTensor } from "../model/stored-tensor.ts";
import { type SgdOptions, Sgd } from "../engine/optimizer.ts";
import { type RunEta, subRunKind } from "./eta.ts";
import { type MetricsLog, distillationPart, epochRecord } from "./metrics-log.ts";
import { ProgressBar, formatDuration, runRemainingText } from "./progress.ts";
import { type ScheduleOptions, learningRateAt } from "./schedule.ts";
import { type FeatureTeacher, type GradientFn, lossAndGradients, trainStep } from "../engine/step.ts";
import type { Teacher } from "./teacher.ts";
import { firstDifference } from "./run-dir.ts";
import { existsSync, mkdirSync } from "node:fs";
import { removeStaleTemporaryFiles } from "../io/atomic.ts";
import { join } from "node:path";

/** Everything that determines the result of a sub-run; stored in its checkpoint and compared on resume. */
export interface TrainSpec extends ModelIdentity {
  epochs: number;
  batchSize: number;
  evalBatchSize: number;
  schedule: ScheduleOptions;
  sgd: SgdOptions;
  /** Null: no augmentation. */
  augmentation: Augmentation | null;
  seed: number;
}

export interface TrainContext {
  /** The sub-run's directory; its checkpoint is `checkpoint.ndckpt` there. */
  dir: string;
  data: PreparedData;
  engine: { backend: string; device: string };
  /** Required when the loss needs a teacher. */
  teacher?: Teacher | null;
  /** Required when the loss compares features (the teacher run in tfjs). */
  featureTeacher?: FeatureTeacher;
  log: (line: string) => void;
  progress?: ProgressBar;
  /** Minutes between checkpoints inside an epoch (0: only at epoch ends). */
  checkpointMinutes: number;
  /** Asked after every step; when it returns true the run checkpoints and returns unfinished (SIGINT). */
  shouldStop?: () => boolean;
  gradients?: GradientFn;
  /** The run's metrics.jsonl, and the optimizer steps between its step records (default 50). */
  metrics?: MetricsLog;
  metricsEvery?: number;
  /** The whole run's remaining time, for the progress line and the epoch log lines. */
  eta?: RunEta;
}

export const CHECKPOINT_FILE = "checkpoint.ndckpt";

export function checkpointPath(dir: string): string {
  return join(dir, CHECKPOINT_FILE);
}

/** The epoch's image order: a function of the seed and the epoch only. */
export function epochOrder(seed: number, epoch: number, count: number): Uint32Array {
  return new Rng((Math.imul(seed, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0).permutation(count);
}

function datasetInfo(data: PreparedData): DatasetInfo {
  return {
    name: data.name,
    labels: data.classes,
    normalization: data.normalization,
    trainSamples: data.train.count,
    valSamples: data.val?.count ?? 0,
    testSamples: data.test.count,
    ...(data.train.targets ? { multiLabel: true as const } : {}),
  };
}

/**
 * How the step's gradients are computed: the engine's way (data-parallel threads), except for what
 * its replicas are not sent (multi-hot targets, a tfjs teacher's features), which runs on this thread.
 */
function gradientsFor(spec: TrainSpec, ctx: TrainContext, multiLabel: boolean, features: boolean): GradientFn {
  if (!features && !multiLabel) return ctx.gradients ?? lossAndGradients;
  if (ctx.gradients && ctx.gradients !== lossAndGradients)
    ctx.log(
      `${spec.name}: ${features ? "a feature method" : "multi-label data"} trains on this thread (data-parallel replicas get labels and logits only)`,
    );
  const teacher = ctx.featureTeacher;
  return (model, batch, loss, teacherLogits) => lossAndGradients(model, batch, loss, teacherLogits, teacher);
}

function modelTensors(model: Model): Map<string, StoredTensor> {
  const out = new Map<string, StoredTensor>();
  for (const [name, v] of model.params) out.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
  return out;
}

export interface TrainResult {
  meta: CheckpointMeta;
  /** False when shouldStop ended the run early (its checkpoint is saved). */
  finished: boolean;
}

const mapText = (e: { map?: number }) => (e.map === undefined ? "" : ` mAP ${(100 * e.map).toFixed(2)}%`);

/** One sub-run while it trains: what it was asked, its model and optimizer, and where it stands. */
interface SubRun {
  spec: TrainSpec;
  ctx: TrainContext;
  path: string;
  loss: Loss;
  graph: Graph;
  model: Model;
  sgd: Sgd;
  meta: CheckpointMeta;
  stepsPerEpoch: number;
  /** The labels-only term's weight, to log the distillation part of the loss; none without a teacher term. */
  labelWeight: number | null;
  kind: ReturnType<typeof subRunKind>;
  table: ReturnType<typeof normalizationTable>;
  rng: Rng;
  progress: NonNullable<TrainContext["progress"]>;
  gradients: GradientFn;
  /** When the checkpoint was last saved (Date.now()), for --checkpoint-minutes. */
  lastSave: number;
}

/** Trains one sub-run from its checkpoint (or from the start) to its last epoch, or until ctx.shouldStop. */
export async function train(spec: TrainSpec, ctx: TrainContext): Promise<TrainResult> {
  const started = startOrResume(spec, ctx);
  if (started.meta.done) {
    ctx.log(`${spec.name}: already trained (${started.meta.epoch} epochs), skipping`);
    release(started);
    return { meta: started.meta, finished: true };
  }
  const run: SubRun = {
    ...started,
    progress: ctx.progress ?? new ProgressBar(process.stderr, 30_000, false),
    gradients: gradientsFor(spec, ctx, ctx.data.train.targets !== undefined, started.loss.features !== undefined),
  };
  try {
    while (run.meta.epoch < spec.epochs) {
      const stopped = await oneEpoch(run);
      if (stopped) return stopped;
    }
    return finish(run);
  } finally {
    release(run);
  }
}

/** The model, optimizer and bookkeeping of a sub-run: new, or as its checkpoint left them (refused when the configuration or data changed). */
function startOrResume(spec: TrainSpec, ctx: TrainContext): Omit<SubRun, "progress" | "gradients"> {
  const { data, log } = ctx;
  const path = checkpointPath(ctx.dir);
  const loss = createLoss(spec.loss.name, spec.loss.options);
  const multiLabel = data.train.targets !== undefined;
  const misfit = lossMisfit(loss, {
    dataset: data.name,
    multiLabel,
    logitsTeacher: Boolean(ctx.teacher),
    featureTeacher: Boolean(ctx.featureTeacher),
  });
  if (misfit) throw new Error(`${spec.name}: the loss ${misfit}`);
  const graph = architecture(
    spec.architecture,
    { height: data.train.height, width: data.train.width, channels: data.train.channels },
    data.classes.length,
    spec.widthScale,
  );
  const stepsPerEpoch = Math.floor(data.train.count / spec.batchSize);
  if (stepsPerEpoch < 1)
    throw new Error(
      `${spec.name}: batch size ${spec.batchSize} is larger than the ${data.train.count} training images`,
    );
  const config = JSON.parse(JSON.stringify(spec)) as Record<string, unknown>;
  const teacherInfo =
    loss.needsTeacher && ctx.teacher
      ? { checkpoint: ctx.teacher.source ?? "(unknown)", engine: ctx.teacher.engine }
      : undefined;

  const model = createModel(graph, spec.seed);
  const sgd = new Sgd(model.params, spec.sgd);
  let meta: CheckpointMeta = {
    name: spec.name,
    role: spec.role,
    architecture: spec.architecture,
    widthScale: spec.widthScale,
    loss: { name: loss.name, options: loss.options },
    dataset: datasetInfo(data),
    epoch: 0,
    step: 0,
    done: false,
    rng: new Rng(spec.seed).state(),
    config,
    history: [],
    engine: ctx.engine,
    wallSeconds: 0,
    ...(teacherInfo ? { teacher: teacherInfo } : {}),
  };

  mkdirSync(ctx.dir, { recursive: true });
  removeStaleTemporaryFiles(ctx.dir); // left by a process killed while writing a checkpoint
  const labelWeight = loss.needsTeacher ? (loss.labelWeight ?? 1) : null;
  let resumed: CheckpointMeta | null = null;
  if (existsSync(path)) {
    const ckpt = loadCheckpoint(path);
    const diff = firstDifference(ckpt.meta.config, config) ?? firstDifference(ckpt.meta.dataset, meta.dataset);
    if (diff)
      throw new Error(`${path}: was trained with a different configuration or data (${diff}); use a new run directory`);
    for (const [name, v] of model.params)
      v.assign(tf.tensor(ckpt.weights.get(name)!.data, ckpt.weights.get(name)!.shape));
    sgd.load(ckpt.optimizer);
    meta = { ...ckpt.meta, engine: ctx.engine };
    resumed = ckpt.meta;
    if (teacherInfo) meta.teacher = teacherInfo;
  }
  ctx.metrics?.reconcile(spec.name, resumed, stepsPerEpoch, labelWeight);
  ctx.eta?.progress(spec.name, meta.epoch + (meta.inEpoch ? meta.inEpoch.batch / stepsPerEpoch : 0));
  if (resumed && !meta.done) {
    const where = meta.inEpoch
      ? `epoch ${meta.epoch + 1}, batch ${meta.inEpoch.batch}/${stepsPerEpoch}`
      : `the end of epoch ${meta.epoch}`;
    log(`${spec.name}: resuming from ${where} (step ${meta.step})`);
  }
  return {
    spec,
    ctx,
    path,
    loss,
    graph,
    model,
    sgd,
    meta,
    stepsPerEpoch,
    labelWeight,
    kind: subRunKind(spec),
    table: normalizationTable(data.normalization),
    rng: Rng.fromState(meta.rng),
    lastSave: Date.now(),
  };
}

function release(run: Pick<SubRun, "sgd" | "model">): void {
  run.sgd.dispose();
  disposeModel(run.model);
}

function save(run: SubRun, inEpoch?: PartialEpoch, rngState?: number[]): void {
  const ckpt: Checkpoint = {
    graph: run.graph,
    weights: modelTensors(run.model),
    optimizer: run.sgd.state(),
    meta: { ...run.meta, inEpoch, rng: rngState ?? run.meta.rng },
  };
  if (!inEpoch) delete ckpt.meta.inEpoch;
  saveCheckpoint(run.path, ckpt);
  run.lastSave = Date.now();
}

/** The next epoch (or the rest of a resumed one), then its evaluation; a result when the run stops early. */
async function oneEpoch(run: SubRun): Promise<TrainResult | null> {
  const { meta } = run;
  const epoch = meta.epoch + 1;
  const acc: PartialEpoch = meta.inEpoch
    ? { crossEntropySum: 0, ...meta.inEpoch }
    : { batch: 0, lossSum: 0, correct: 0, seen: 0, crossEntropySum: 0, seconds: 0 };
  delete meta.inEpoch;
  const stopped = await trainBatches(run, epoch, acc);
  if (stopped) return stopped;
  endEpoch(run, epoch, acc);
  if (!meta.done && run.ctx.shouldStop?.()) return { meta, finished: false };
  return null;
}

/** The epoch's optimizer steps from acc.batch on, adding to acc; a result when ctx.shouldStop asks to stop mid-epoch. */
async function trainBatches(run: SubRun, epoch: number, acc: PartialEpoch): Promise<TrainResult | null> {
  const { spec, ctx, loss, meta, stepsPerEpoch, rng } = run;
  const { data, log } = ctx;
  const metricsEvery = ctx.metricsEvery ?? 50;
  const order = epochOrder(spec.seed, epoch, data.train.count);
  const label = `${spec.name} epoch ${epoch}/${spec.epochs}`;
  const batchAt = (b: number): { batch: Batch; rngAfter: number[] } => {
    const batch = makeBatch(
      data.train,
      order.subarray(b * spec.batchSize, (b + 1) * spec.batchSize),
      run.table,
      spec.augmentation,
      rng,
    );
    return { batch, rngAfter: rng.state() };
  };
  // The teacher works one batch ahead (ONNX runs on its own threads while this thread trains).
  let next = acc.batch < stepsPerEpoch ? batchAt(acc.batch) : null;
  let nextLogits = next && loss.needsTeacher ? ctx.teacher!.logits(next.batch) : null;
  // Wall-clock time, from here to the end of each step: batches, the teacher, checkpoints and the
  // event loop (where the ONNX teacher's runs happen) all count.
  let clock = performance.now();
  while (next) {
    const current = next;
    const teacherLogits = nextLogits ? await nextLogits : null;
    next = acc.batch + 1 < stepsPerEpoch ? batchAt(acc.batch + 1) : null;
    nextLogits = next && loss.needsTeacher ? ctx.teacher!.logits(next.batch) : null;
    const lr = learningRateAt(spec.schedule, meta.step, stepsPerEpoch, spec.epochs);
    const r = trainStep(run.model, run.sgd, current.batch, loss, teacherLogits, lr, run.gradients);
    meta.step++;
    acc.batch++;
    acc.lossSum += r.loss * current.batch.size;
    acc.correct += r.correct;
    acc.crossEntropySum! += r.crossEntropySum;
    acc.seen += current.batch.size;
    // Let the event loop run (signal handlers, the ONNX teacher's callbacks): without it a step
    // loop that never awaits I/O would not see Ctrl-C until the sub-run ends.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const stop = ctx.shouldStop?.() ?? false;
    const due = ctx.checkpointMinutes > 0 && Date.now() - run.lastSave >= ctx.checkpointMinutes * 60_000;
    const now = performance.now();
    acc.seconds += (now - clock) / 1000;
    clock = now;
    const imagesPerSecond = acc.seen / acc.seconds;
    ctx.eta?.observe(run.kind, spec.role, (stepsPerEpoch * spec.batchSize) / imagesPerSecond);
    ctx.eta?.progress(spec.name, epoch - 1 + acc.batch / stepsPerEpoch);
    run.progress.update(label, {
      done: acc.seen,
      total: stepsPerEpoch * spec.batchSize,
      imagesPerSecond,
      loss: acc.lossSum / acc.seen,
      accuracy: acc.correct / acc.seen,
      run: ctx.eta?.remaining(),
    });
    if (ctx.metrics && meta.step % metricsEvery === 0) {
      // Running means of the epoch so far (as Keras logs batches): a resumed epoch continues them exactly.
      const trainLoss = acc.lossSum / acc.seen;
      const crossEntropy = acc.crossEntropySum! / acc.seen;
      const distillation = distillationPart(trainLoss, crossEntropy, run.labelWeight);
      ctx.metrics.append({
        subRun: spec.name,
        kind: "step",
        epoch,
        step: meta.step,
        loss: trainLoss,
        crossEntropy,
        ...(distillation !== undefined ? { distillation } : {}),
        trainAccuracy: acc.correct / acc.seen,
        learningRate: lr,
        imagesPerSecond,
        time: new Date().toISOString(),
      });
    }
    if (next && (stop || due)) {
      if (nextLogits) await nextLogits; // settle it: nothing may run on after the process state is saved
      save(run, acc, current.rngAfter);
      if (stop) {
        run.progress.clear();
        log(`${spec.name}: stopped at epoch ${epoch}, batch ${acc.batch}/${stepsPerEpoch}; checkpoint saved`);
        return { meta: { ...meta, inEpoch: acc }, finished: false };
      }
    }
    if (!next) meta.rng = current.rngAfter;
  }
  run.progress.clear();
  return null;
}

/** After an epoch's last step: validation (and test, after the last epoch), the checkpoint, metrics and the log line. */
function endEpoch(run: SubRun, epoch: number, acc: PartialEpoch): void {
  const { spec, ctx, meta, stepsPerEpoch } = run;
  const { data } = ctx;
  const evalStart = performance.now();
  const val = data.val ? evaluate(run.model, data.val, run.table, spec.evalBatchSize) : undefined;
  // The test split is measured once, on the model that is reported: the last epoch's.
  const test = epoch === spec.epochs ? evaluate(run.model, data.test, run.table, spec.evalBatchSize) : undefined;
  const metrics: EpochMetrics = {
    epoch,
    trainLoss: acc.lossSum / acc.seen,
    trainCrossEntropy: acc.crossEntropySum! / acc.seen,
    trainAccuracy: acc.correct / acc.seen,
    ...(val ? { valAccuracy: val.accuracy, valLoss: val.loss } : {}),
    ...(test ? { testAccuracy: test.accuracy, testLoss: test.loss } : {}),
    ...(val?.map !== undefined ? { valMap: val.map } : {}),
    ...(test?.map !== undefined ? { testMap: test.map } : {}),
    learningRate: learningRateAt(spec.schedule, meta.step - 1, stepsPerEpoch, spec.epochs),
    imagesPerSecond: acc.seen / acc.seconds,
    seconds: acc.seconds + (performance.now() - evalStart) / 1000,
  };
  meta.history.push(metrics);
  meta.epoch = epoch;
  meta.wallSeconds += metrics.seconds;
  meta.done = epoch === spec.epochs;
  save(run);
  ctx.metrics?.append({
    ...epochRecord(spec.name, metrics, stepsPerEpoch, run.labelWeight),
    time: new Date().toISOString(),
  });
  ctx.eta?.observe(run.kind, spec.role, metrics.seconds);
  ctx.eta?.progress(spec.name, epoch);
  const remaining = ctx.eta?.remaining();
  ctx.log(
    `${spec.name} epoch ${epoch}/${spec.epochs}: train loss ${metrics.trainLoss.toFixed(4)}` +
      (run.loss.name === "ce" ? "" : ` (cross-entropy ${metrics.trainCrossEntropy!.toFixed(4)})`) +
      ` acc ${(100 * metrics.trainAccuracy).toFixed(2)}%` +
      (val ? `, val acc ${(100 * val.accuracy).toFixed(2)}%${mapText(val)} loss ${val.loss.toFixed(4)}` : "") +
      (test ? `, test acc ${(100 * test.accuracy).toFixed(2)}%${mapText(test)} loss ${test.loss.toFixed(4)}` : "") +
      `, lr ${metrics.learningRate.toPrecision(3)}, ` +
      `${metrics.imagesPerSecond.toFixed(0)} img/s, ${formatDuration(metrics.seconds)}` +
      (remaining ? `; run: ${runRemainingText(remaining)}` : ""),
  );
}

/** Every epoch done: marks the checkpoint done if an earlier save had not. */
function finish(run: SubRun): TrainResult {
  if (!run.meta.done) {
    run.meta.done = true; // epochs already reached (e.g. a finished run saved before `done` was set)
    save(run);
  }
  return { meta: run.meta, finished: true };
}
