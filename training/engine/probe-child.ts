// One engine's side of the probe (probe.ts), in its own process because a process runs one tfjs
// backend: start the engine as training would (data-parallel replicas on wasm), train a fixed small
// model for a few seconds and print {backend, device, imagesPerSecond} as one JSON line.
import { createLoss } from "../losses/index.ts";
import { createModel, disposeModel } from "../model/forward.ts";
import { architecture } from "../model/resnet.ts";
import { Sgd } from "./optimizer.ts";
import { trainStep } from "./step.ts";
import { startTrainingEngine } from "./index.ts";
import { PROBE_WORKLOAD } from "./probe-workload.ts";

const backend = process.argv[2];
const seconds = Number(process.argv[3] ?? PROBE_WORKLOAD.seconds);
const { model: name, widthScale, batch: size, input } = PROBE_WORKLOAD;

const engine = await startTrainingEngine(backend, { log: () => {} });
const model = createModel(architecture(name, input, 10, widthScale), 1);
const sgd = new Sgd(model.params, { momentum: 0.9, weightDecay: 5e-4, nesterov: true });
const loss = createLoss("ce");
const pixels = size * input.height * input.width * input.channels;
const batch = {
  images: Float32Array.from({ length: pixels }, (_, i) => Math.sin(i * 12.9898) % 1),
  labels: Int32Array.from({ length: size }, (_, i) => i % 10),
  size,
};
const step = () => trainStep(model, sgd, batch, loss, null, 0.01, engine.gradients);

// Two steps untimed: the first builds kernels and graphs on every engine.
step();
step();
let steps = 0;
const start = performance.now();
while (steps < 3 || performance.now() - start < seconds * 1000) {
  step();
  steps++;
}
const elapsed = (performance.now() - start) / 1000;
disposeModel(model);
await engine.close();
console.log(
  JSON.stringify({ backend: engine.backend, device: engine.device, imagesPerSecond: (steps * size) / elapsed }),
);
