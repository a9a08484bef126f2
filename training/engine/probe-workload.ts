// What the engine probe trains: small enough to measure in seconds, shaped like the students (a
// CIFAR-style ResNet on Fashion-MNIST-sized images at a real batch size).
export const PROBE_WORKLOAD = {
  model: "unmodified",
  widthScale: 1,
  batch: 64,
  input: { height: 28, width: 28, channels: 1 },
  /** Timed seconds per engine, after two untimed steps. */
  seconds: 3,
} as const;

export function describeWorkload(): string {
  const { model, widthScale, batch, input, seconds } = PROBE_WORKLOAD;
  return `${seconds} s of training steps of ${model} x${widthScale}, batch ${batch}, ${input.height}x${input.width}x${input.channels}`;
}
