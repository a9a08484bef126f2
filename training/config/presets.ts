// Named starting points for a run; every value can be overridden by a config file or a flag.
//   quick: a few thousand images at small widths, a couple of epochs: minutes on 2 CPU cores. The
//          README demo and the CI smoke run; accuracies are far from converged.
//   full:  the whole data set at full width, 1 h 45 min to 2 h on 2 idle CPU cores (measured:
//          README, "Training speed"): teacher and students 2 epochs each, cosine schedule.
//   paper: the paper-style schedule for a GPU box (SGD 0.05 at batch 64, momentum 0.9, weight decay
//          5e-4, 60 epochs, x0.1 at 1/2 and 3/4 of them; KD T=4, alpha=0.9): about 50 hours on 2 CPU cores.
import type { DistillConfig } from "./schema.ts";

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
  seed: 1,
  backend: "auto",
  replicas: 0,
  convolutions: "auto",
  teacherEngine: "auto",
  checkpointMinutes: 10,
};

export const PRESETS: Record<string, DistillConfig> = {
  full: { ...common, epochs: 2, teacherEpochs: 2, schedule: "cosine" },
  paper: common,
  quick: {
    ...common,
    trainLimit: 2000,
    valSize: 200,
    testLimit: 1000,
    widthScale: 0.25,
    teacherWidthScale: 0.25,
    epochs: 2,
    // The teacher is trained once for six students: worth twice their epochs to be clearly better.
    teacherEpochs: 4,
    schedule: "cosine",
    checkpointMinutes: 1,
  },
};
