// `npm run distill` as a sequence of sub-runs (plan.ts) in one run directory. Each sub-run
// checkpoints into <runDir>/<name>/, so resuming the run continues wherever it stopped. The run
// directory also holds config.json (the resolved configuration), log.txt, and report.json /
// report.md, rewritten after every sub-run.
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import type { DistillConfig } from "../config/schema.ts";
import { removeStaleTemporaryFiles } from "../io/atomic.ts";
import { type Batch, makeBatch, normalizationTable, viewCount } from "../data/batches.ts";
import { loadDataset } from "../data/index.ts";
import { type PreparedData, prepareData } from "../data/prepare.ts";
import { Rng } from "../data/rng.ts";
import { type Checkpoint, loadCheckpoint } from "./checkpoint.ts";
import { checkpointPath, train } from "./loop.ts";
import { augmentation, describeModels, planSubRuns } from "./plan.ts";
import { type CachedTeacher, cacheTeacher } from "./teacher-cache.ts";
import { firstDifference } from "./run-dir.ts";
import { ProgressBar } from "./progress.ts";
import type { GradientFn } from "./step.ts";
import { type RunReport, buildReport, modelReport, writeReport } from "./report.ts";
import { type Teacher, loadTeacher } from "./teacher.ts";

export interface PipelineOptions {
  runDir: string;
  preset: string;
  config: DistillConfig;
  engine: { backend: string; device: string };
  /** How a batch's gradients are computed (default: on this thread; the engine's data-parallel one). */
  gradients?: GradientFn;
  /** Sub-run names to run (default: all). */
  only?: string[];
  /** A trained teacher's checkpoint, instead of training one in this run. */
  teacherCheckpoint?: string;
  log?: (line: string) => void;
  progress?: ProgressBar;
  shouldStop?: () => boolean;
}

export interface PipelineResult {
  report: RunReport;
  /** False when stopped early (checkpoints saved; resume continues). */
  finished: boolean;
}

/** The first test images, normalized: the probe that checks the ONNX teacher against tfjs. */
function probeBatch(data: PreparedData): Batch {
  const n = Math.min(16, data.test.count);
  return makeBatch(data.test, Array.from({ length: n }, (_, i) => i), normalizationTable(data.normalization), null, new Rng(0));
}

/**
 * A teacher trained on other data statistics sees its own normalization: the batch is mapped from
 * this run's normalization to the teacher's, x' = (x * std + mean - mean_t) / std_t per channel.
 */
export function withNormalization(teacher: Teacher, from: PreparedData["normalization"], to: PreparedData["normalization"]): Teacher {
  if (firstDifference(from, to) === null) return teacher;
  const c = from.mean.length;
  const scale = from.std.map((s, k) => s / to.std[k]!);
  const shift = from.mean.map((m, k) => (m - to.mean[k]!) / to.std[k]!);
  return {
    ...teacher,
    logits: (batch) => {
      const images = batch.images.map((v, i) => v * scale[i % c]! + shift[i % c]!);
      return teacher.logits({ ...batch, images });
    },
  };
}

export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const { config, runDir } = opts;
  const logFile = join(runDir, "log.txt");
  const log = (line: string) => {
    opts.progress?.clear();
    (opts.log ?? console.log)(line);
    appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);
  };
  removeStaleTemporaryFiles(runDir); // report.json and friends, from a process killed while writing
  log(`run ${resolve(runDir)}: preset ${opts.preset}, engine tfjs ${opts.engine.backend} on ${opts.engine.device}`);

  const started = Date.now();
  const data = prepareData(loadDataset(config.dataset, config.data ?? undefined), { trainLimit: config.trainLimit, valSize: config.valSize, testLimit: config.testLimit, seed: config.seed });
  log(`data ${data.name}: ${data.train.count} train, ${data.val?.count ?? 0} validation, ${data.test.count} test images of ${data.train.height}x${data.train.width}x${data.train.channels}; mean ${data.normalization.mean.map((v) => v.toFixed(4))}, std ${data.normalization.std.map((v) => v.toFixed(4))} (${Date.now() - started} ms)`);
  for (const line of describeModels(config, data.train, data.classes.length)) log(line);

  const plan = planSubRuns(config);
  const known = plan.map((r) => r.name);
  const unknown = (opts.only ?? []).filter((n) => !known.includes(n));
  if (unknown.length) throw new Error(`--only: unknown sub-run ${unknown.join(", ")} (sub-runs: ${known.join(", ")})`);
  const selected = plan.filter((r) => (opts.only ? opts.only.includes(r.name) : true) && !(r.name === "teacher" && opts.teacherCheckpoint));

  const teacherPath = opts.teacherCheckpoint ?? checkpointPath(join(runDir, "teacher"));
  let teacher: Teacher | CachedTeacher | null = null;
  // Read from the checkpoints on disk each time: sub-runs finished earlier (before a resume, or by
  // another process training other sub-runs of this run with --only) belong in the report too.
  const report = (): RunReport => {
    const models = plan.flatMap((r) => {
      const p = r.name === "teacher" ? teacherPath : checkpointPath(join(runDir, r.name));
      return existsSync(p) ? [modelReport(loadCheckpoint(p))] : [];
    });
    const dataset = { name: data.name, labels: data.classes, normalization: data.normalization, trainSamples: data.train.count, valSamples: data.val?.count ?? 0, testSamples: data.test.count };
    return buildReport({ run: basename(resolve(runDir)), preset: opts.preset, dataset }, models);
  };

  try {
    for (const sub of selected) {
      if (opts.shouldStop?.()) return { report: report(), finished: false };
      const needsTeacher = sub.spec.loss.name === "kd" && config.alpha > 0;
      if (needsTeacher && !teacher) {
        if (!existsSync(teacherPath)) throw new Error(`${sub.name} needs a trained teacher: ${teacherPath} does not exist (train it first, or pass --teacher FILE)`);
        const ckpt: Checkpoint = loadCheckpoint(teacherPath);
        if (!ckpt.meta.done) throw new Error(`${teacherPath}: the teacher has not finished training (${ckpt.meta.epoch} epochs done); resume the run first`);
        const { height, width, channels } = ckpt.graph.input;
        if (ckpt.meta.dataset.name !== data.name || ckpt.graph.numClasses !== data.classes.length || height !== data.train.height || width !== data.train.width || channels !== data.train.channels) {
          throw new Error(`${teacherPath}: the teacher was trained on ${ckpt.meta.dataset.name} (${ckpt.graph.input.height}x${ckpt.graph.input.width}x${ckpt.graph.input.channels}, ${ckpt.graph.numClasses} classes), not this run's ${data.name}`);
        }
        teacher = { ...withNormalization(await loadTeacher(ckpt, config.teacherEngine, probeBatch(data), log), data.normalization, ckpt.meta.dataset.normalization), source: teacherPath };
        const views = viewCount(augmentation(config, "student"));
        const cached = config.teacherCache !== false && views !== null ? cacheTeacher(teacher, data.train.count, views, data.classes.length) : null;
        if (cached) teacher = cached;
        log(`teacher: ${teacherPath} (test acc ${((ckpt.meta.history.at(-1)?.testAccuracy ?? 0) * 100).toFixed(2)}%), soft targets by ${teacher.engine}`);
      }
      const dir = join(runDir, sub.name);
      mkdirSync(dir, { recursive: true });
      const result = await train(sub.spec, {
        dir,
        data,
        engine: opts.engine,
        teacher: needsTeacher ? teacher : null,
        log,
        progress: opts.progress,
        checkpointMinutes: config.checkpointMinutes,
        shouldStop: opts.shouldStop,
        gradients: opts.gradients,
      });
      if (needsTeacher && teacher && "stats" in teacher) {
        const s = teacher.stats();
        log(`teacher cache: ${s.hits} images answered from the cache, ${s.misses} run through the teacher so far (${((100 * s.hits) / Math.max(1, s.hits + s.misses)).toFixed(1)}% hits)`);
      }
      writeReport(runDir, report());
      if (!result.finished) return { report: report(), finished: false };
    }
  } finally {
    await teacher?.dispose();
  }
  const final = report();
  writeReport(runDir, final);
  log(`run finished in ${((Date.now() - started) / 1000).toFixed(0)} s; report in ${join(runDir, "report.md")}`);
  return { report: final, finished: true };
}
