// Learning rate as a function of training progress, evaluated every step.
//   cosine: base * (1 + cos(pi * progress)) / 2, progress from 0 to 1 over the run
//   step:   base * gamma^(number of milestones passed); milestones are fractions of the epochs
//           (0.5 and 0.75 of 240 epochs are RepDistiller's 150/180 style drops)
// Both start with an optional linear warm-up over the first `warmupEpochs`.

export interface ScheduleOptions {
  kind: "cosine" | "step";
  learningRate: number;
  /** For "step": fractions of the total epochs where the rate is multiplied by gamma. */
  milestones: number[];
  gamma: number;
  warmupEpochs: number;
}

/** The rate for optimizer step `step` (0-based) of a run of `totalEpochs` epochs of `stepsPerEpoch`. */
export function learningRateAt(s: ScheduleOptions, step: number, stepsPerEpoch: number, totalEpochs: number): number {
  const epoch = step / stepsPerEpoch; // fractional
  const warm = s.warmupEpochs > 0 && epoch < s.warmupEpochs ? (step + 1) / (s.warmupEpochs * stepsPerEpoch) : 1;
  if (s.kind === "cosine")
    return warm * s.learningRate * 0.5 * (1 + Math.cos((Math.PI * step) / (stepsPerEpoch * totalEpochs)));
  const passed = s.milestones.filter((m) => epoch >= m * totalEpochs).length;
  return warm * s.learningRate * s.gamma ** passed;
}
