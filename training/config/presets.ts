// Named starting points for a run; every value can be overridden by a config file or a flag.
//   quick: a few thousand images at small widths, a couple of epochs: minutes on 2 CPU cores. The
//          README demo and the CI smoke run; accuracies are far from converged.
//   full:  the recipe behind the shipped models (docs/distillation.md): the teacher 40 epochs with
//          random erasing, every student 15 epochs with KD and alone, 3 seeds; SGD with Nesterov
//          momentum at batch 128, learning rate 0.1 (0.05 at batch 64, scaled), cosine after a
//          1-epoch warm-up. Hours of compute at MEASURED_THROUGHPUT (`distill --help` prints the
//          figure, plan.ts computes it); it resumes from its checkpoints.
//   paper: the paper-style schedule for a GPU box (SGD 0.05 at batch 64, momentum 0.9, weight decay
//          5e-4, 60 epochs, x0.1 at 1/2 and 3/4 of them; KD T=4, alpha=0.9).
import type { DistillConfig } from "./schema.ts";

/**
 * Training images per wall-clock second, evaluation included, of the full-width Fashion-MNIST
 * models, as the committed runs measured them on the 2-core development machine (tfjs wasm, mostly
 * one replica per sub-run with another beside it): epochs x images per epoch / wall seconds, from
 * models/runs/fmnist-teacher (the teacher, 40 epochs in 10h56m) and models/runs/fmnist-students
 * (18 students x 15 epochs, KD and baselines, in 20.9 h). A test holds them to those reports.
 */
export const MEASURED_THROUGHPUT = {
  teacher: 55.7,
  student: 196.8,
  source:
    "the committed runs fmnist-teacher and fmnist-students (2-core AMD EPYC, tfjs wasm, mostly one replica per sub-run)",
} as const;

const common: DistillConfig = {
  dataset: "fashion-mnist",
  data: null,
  trainLimit: 0,
  valSize: 5000,
  testLimit: 0,
  students: ["unmodified", "wide", "narrow-deep"],
  widthScale: 1,
  teacherWidthScale: 1,
  epochs: 60,
  teacherEpochs: 60,
  batchSize: 64,
  evalBatchSize: 500,
  learningRate: 0.05,
  schedule: "step",
  milestones: [0.5, 0.75],
  gamma: 0.1,
  warmupEpochs: 0,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 5e-4,
  temperature: 4,
  alpha: 0.9,
  augment: true,
  cropPadding: null,
  flip: true,
  erasing: 0,
  teacherErasing: 0,
  seed: 1,
  seeds: 1,
  backend: "auto",
  replicas: 0,
  convolutions: "auto",
  teacherEngine: "auto",
  teacherCache: true,
  checkpointMinutes: 10,
  metricsEvery: 50,
  inputSize: null,
  channels: null,
  skipUnreadable: true,
  holdout: 0.1,
  loss: ["kd"],
  lossOptions: {},
  teacherLayout: null,
  teacherInputSize: null,
  teacherMean: null,
  teacherStd: null,
  teacherOutput: null,
  teacherLabels: null,
};

export const PRESETS: Record<string, DistillConfig> = {
  full: {
    ...common,
    epochs: 15,
    teacherEpochs: 40,
    batchSize: 128,
    learningRate: 0.1,
    schedule: "cosine",
    warmupEpochs: 1,
    nesterov: true,
    teacherErasing: 0.5,
    seeds: 3,
  },
  paper: common,
  quick: {
    ...common,
    trainLimit: 2000,
    valSize: 200,
    testLimit: 1000,
    widthScale: 0.5,
    teacherWidthScale: 0.5,
    epochs: 2,
    // The teacher is trained once for six students: worth twice their epochs to be clearly better.
    teacherEpochs: 4,
    schedule: "cosine",
    checkpointMinutes: 1,
    metricsEvery: 10,
  },
};
