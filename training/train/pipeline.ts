// `npm run distill` as a sequence of sub-runs (plan.ts) in one run directory. Each sub-run
// checkpoints into <runDir>/<name>/, so resuming the run continues wherever it stopped. The run
// directory also holds config.json (the resolved configuration), log.txt, and report.json /
// report.md, rewritten after every sub-run.
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { MEASURED_THROUGHPUT } from "../config/presets.ts";
import type { DistillConfig } from "../config/schema.ts";
import { removeStaleTemporaryFiles } from "../io/atomic.ts";
import { fileSetOptions, openDataset } from "../data/index.ts";
import { prepareData } from "../data/prepare.ts";
import { createLoss } from "../losses/index.ts";
import { type CheckpointMeta, loadCheckpoint } from "./checkpoint.ts";
import { RunEta, subRunKind } from "./eta.ts";
import { checkpointPath, train } from "./loop.ts";
import { MetricsLog } from "./metrics-log.ts";
import { isOnnxFile, openFeatureTeacher, openLogitsTeacher } from "./open-teacher.ts";
import { describeModels, planSubRuns } from "./plan.ts";
import type { CachedTeacher } from "./teacher-cache.ts";
import type { ProgressBar } from "./progress.ts";
import type { GradientFn } from "../engine/step.ts";
import { type RunReport, buildReport, modelReport, writeReport } from "./report.ts";
import type { Teacher } from "./teacher.ts";

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
  /** Where the teacher's soft targets are cached across processes (teacher-cache.ts); none: in memory only. */
  teacherCacheDir?: string;
  log?: (line: string) => void;
  progress?: ProgressBar;
  shouldStop?: () => boolean;
}

export interface PipelineResult {
  report: RunReport;
  /** False when stopped early (checkpoints saved; resume continues). */
  finished: boolean;
}

export { withNormalization } from "./open-teacher.ts";

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
  const data = prepareData(await openDataset(config.dataset, config.data ?? undefined, fileSetOptions(config, log)), {
    trainLimit: config.trainLimit,
    valSize: config.valSize,
    testLimit: config.testLimit,
    seed: config.seed,
  });
  log(
    `data ${data.name}: ${data.train.count} train, ${data.val?.count ?? 0} validation, ${data.test.count} test images of ${data.train.height}x${data.train.width}x${data.train.channels}; mean ${data.normalization.mean.map((v) => v.toFixed(4))}, std ${data.normalization.std.map((v) => v.toFixed(4))} (${Date.now() - started} ms)`,
  );
  for (const line of describeModels(config, data.train, data.classes.length)) log(line);

  const plan = planSubRuns(config);
  const known = plan.map((r) => r.name);
  const unknown = (opts.only ?? []).filter((n) => !known.includes(n));
  if (unknown.length) throw new Error(`--only: unknown sub-run ${unknown.join(", ")} (sub-runs: ${known.join(", ")})`);
  const selected = plan.filter(
    (r) => (opts.only ? opts.only.includes(r.name) : true) && !(r.name === "teacher" && opts.teacherCheckpoint),
  );

  // The run's ETA starts from what its checkpoints on disk measured (earlier sessions, other processes).
  const onDisk = new Map<string, CheckpointMeta>();
  for (const r of plan) {
    const p = checkpointPath(join(runDir, r.name));
    if (existsSync(p)) onDisk.set(r.name, loadCheckpoint(p).meta);
  }
  const eta = new RunEta(
    selected.map((r) => ({
      name: r.name,
      kind: subRunKind(r.spec),
      role: r.spec.role,
      epochs: r.spec.epochs,
      done: onDisk.get(r.name)?.epoch ?? 0,
    })),
    MEASURED_THROUGHPUT,
  );
  for (const r of plan) {
    const last = onDisk.get(r.name)?.history.at(-1);
    if (last) eta.observe(subRunKind(r.spec), r.spec.role, last.seconds);
  }
  const metrics = new MetricsLog(runDir);

  const teacherPath = opts.teacherCheckpoint ?? checkpointPath(join(runDir, "teacher"));
  let teacher: Teacher | CachedTeacher | null = null;
  let featureTeacher: ReturnType<typeof openFeatureTeacher> | null = null;
  // Read from the checkpoints on disk each time: sub-runs finished earlier (before a resume, or by
  // another process training other sub-runs of this run with --only) belong in the report too.
  const report = (): RunReport => {
    const models = plan.flatMap((r) => {
      // A teacher given as an ONNX file has no checkpoint to report.
      const p =
        r.name === "teacher" ? (isOnnxFile(teacherPath) ? null : teacherPath) : checkpointPath(join(runDir, r.name));
      return p && existsSync(p) ? [modelReport(loadCheckpoint(p))] : [];
    });
    const dataset = {
      name: data.name,
      labels: data.classes,
      normalization: data.normalization,
      trainSamples: data.train.count,
      valSamples: data.val?.count ?? 0,
      testSamples: data.test.count,
    };
    return buildReport({ run: basename(resolve(runDir)), preset: opts.preset, dataset }, models);
  };

  try {
    for (const sub of selected) {
      if (opts.shouldStop?.()) return { report: report(), finished: false };
      const loss = createLoss(sub.spec.loss.name, sub.spec.loss.options);
      const needsTeacher = loss.needsTeacher;
      if ((needsTeacher || loss.features) && !existsSync(teacherPath))
        throw new Error(
          `${sub.name} needs a trained teacher: ${teacherPath} does not exist (train it first, or pass --teacher FILE)`,
        );
      if (needsTeacher && !teacher)
        teacher = await openLogitsTeacher(teacherPath, config, data, log, opts.teacherCacheDir);
      if (loss.features && !featureTeacher) featureTeacher = openFeatureTeacher(teacherPath, data, log);
      const dir = join(runDir, sub.name);
      mkdirSync(dir, { recursive: true });
      const result = await train(sub.spec, {
        dir,
        data,
        engine: opts.engine,
        teacher: needsTeacher ? teacher : null,
        featureTeacher: loss.features ? featureTeacher!.features : undefined,
        log,
        progress: opts.progress,
        checkpointMinutes: config.checkpointMinutes,
        shouldStop: opts.shouldStop,
        gradients: opts.gradients,
        metrics,
        metricsEvery: config.metricsEvery,
        eta,
      });
      if (needsTeacher && teacher && "stats" in teacher) {
        const s = teacher.stats();
        log(
          `teacher cache: ${s.hits} images answered from the cache, ${s.misses} run through the teacher so far (${((100 * s.hits) / Math.max(1, s.hits + s.misses)).toFixed(1)}% hits)`,
        );
      }
      writeReport(runDir, report());
      if (!result.finished) return { report: report(), finished: false };
    }
  } finally {
    await teacher?.dispose();
    featureTeacher?.dispose();
  }
  const final = report();
  writeReport(runDir, final);
  log(`run finished in ${((Date.now() - started) / 1000).toFixed(0)} s; report in ${join(runDir, "report.md")}`);
  return { report: final, finished: true };
}
