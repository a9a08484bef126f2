// What a distill run consists of, decided from its configuration alone (no engine needed):
//   teacher                      cross-entropy                      (skipped with --teacher FILE)
//   <student>-kd                 KD from the teacher (T, alpha)     for each student architecture
//   <student>-<method>           each other method of --loss (dkd, at, ...; options from lossOptions)
//   <student>-baseline           cross-entropy alone (alpha = 0)
// On multi-label data the teacher and the baselines train with sigmoid cross-entropy (bce).
// With `seeds` N > 1 every student sub-run is repeated per seed, named <student>-kd-s<seed> and
// <student>-baseline-s<seed>, seeds seed .. seed+N-1. Sub-runs of one seed share it, so a KD student
// and its baseline start from the same weights (per architecture) and every student of that seed
// sees the same images in the same order with the same augmentation.
import type { DistillConfig } from "../config/schema.ts";
import type { Augmentation } from "../data/batches.ts";
import { datasetEntry } from "../data/index.ts";
import { countMacs, countParams } from "../model/graph.ts";
import { architecture } from "../model/resnet.ts";
import type { Throughput } from "./eta.ts";
import type { TrainSpec } from "./loop.ts";

export interface SubRun {
  name: string;
  spec: TrainSpec;
}

export function augmentation(config: DistillConfig, role: "teacher" | "student"): Augmentation | null {
  if (!config.augment) return null;
  // Runs stored before erasing existed lack the fields; no erasing leaves the spec as it was.
  const erasing = (role === "teacher" ? config.teacherErasing : config.erasing) ?? 0;
  return {
    cropPadding: config.cropPadding ?? datasetEntry(config.dataset).cropPadding,
    flip: config.flip,
    ...(erasing > 0 ? { erasing } : {}),
  };
}

/** The seeds students are trained with. */
export function studentSeeds(config: DistillConfig): number[] {
  return Array.from({ length: config.seeds ?? 1 }, (_, i) => config.seed + i);
}

/** The labels-only loss of the data set: cross-entropy, or sigmoid cross-entropy for multi-label data. */
export function labelsOnlyLoss(config: DistillConfig): string {
  return datasetEntry(config.dataset).multiLabel ? "bce" : "ce";
}

/** The distillation methods of a run, with their options ("kd": temperature and alpha, as always). */
export function methods(config: DistillConfig): { name: string; options: Record<string, unknown> }[] {
  return (config.loss ?? ["kd"]).map((name) =>
    name === "kd"
      ? { name, options: { temperature: config.temperature, alpha: config.alpha } }
      : { name, options: { ...config.lossOptions?.[name] } },
  );
}

/** The sub-runs of a configuration, in training order. */
export function planSubRuns(config: DistillConfig): SubRun[] {
  const common = {
    batchSize: config.batchSize,
    evalBatchSize: config.evalBatchSize,
    schedule: {
      kind: config.schedule,
      learningRate: config.learningRate,
      milestones: config.milestones,
      gamma: config.gamma,
      warmupEpochs: config.warmupEpochs,
    },
    sgd: { momentum: config.momentum, weightDecay: config.weightDecay, nesterov: config.nesterov },
  };
  const runs: SubRun[] = [
    {
      name: "teacher",
      spec: {
        ...common,
        name: "teacher",
        role: "teacher",
        architecture: "teacher",
        widthScale: config.teacherWidthScale,
        loss: { name: labelsOnlyLoss(config), options: {} },
        epochs: config.teacherEpochs,
        augmentation: augmentation(config, "teacher"),
        seed: config.seed,
      },
    },
  ];
  const seeds = studentSeeds(config);
  for (const seed of seeds) {
    const suffix = seeds.length > 1 ? `-s${seed}` : "";
    for (const arch of config.students) {
      const student = {
        ...common,
        role: "student" as const,
        architecture: arch,
        widthScale: config.widthScale,
        epochs: config.epochs,
        augmentation: augmentation(config, "student"),
        seed,
      };
      for (const loss of methods(config))
        runs.push({
          name: `${arch}-${loss.name}${suffix}`,
          spec: { ...student, name: `${arch}-${loss.name}${suffix}`, loss },
        });
      runs.push({
        name: `${arch}-baseline${suffix}`,
        spec: { ...student, name: `${arch}-baseline${suffix}`, loss: { name: labelsOnlyLoss(config), options: {} } },
      });
    }
  }
  return runs;
}

/** Params and MACs of every architecture of the run, for the log before training starts. */
export function describeModels(
  config: DistillConfig,
  input: { height: number; width: number; channels: number },
  classes: number,
): string[] {
  const rows = [
    ["teacher", config.teacherWidthScale] as const,
    ...config.students.map((s) => [s, config.widthScale] as const),
  ];
  return rows.map(([arch, k]) => {
    const g = architecture(arch, input, classes, k);
    return `model ${arch} x${k}: ${countParams(g).toLocaleString("en-US")} params, ${countMacs(g).toLocaleString("en-US")} MACs/image`;
  });
}

/**
 * Wall-clock seconds to train every sub-run of `config` one after another on `trainImages`
 * training images, at `throughput` (a run that trains sub-runs side by side overlaps them).
 */
export function expectedSeconds(config: DistillConfig, trainImages: number, throughput: Throughput): number {
  const imagesPerEpoch = trainImages - (trainImages % config.batchSize);
  return planSubRuns(config).reduce((s, r) => s + (r.spec.epochs * imagesPerEpoch) / throughput[r.spec.role], 0);
}
