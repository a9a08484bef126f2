// The whole KD training step of every architecture (three students and the teacher) on every tfjs
// backend a user may train on: cpu (the reference), wasm with the project's kernels and native
// convolutions, and tfjs-node (libtensorflow, built by `npm run setup:tfjs-node`) where it is
// installed: the loss, every gradient and the batch-norm moving statistics must agree; then a few
// SGD steps on tfjs-node must lower the loss. Where tfjs-node is not installed its tests are
// skipped, and say so (one line, and vitest's skipped count).
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { importNative } from "../../../training/engine/backend.ts";
import { useNativeConvolutions } from "../../../training/engine/native-conv.ts";
import { createLoss } from "../../../training/losses/index.ts";
import { type Model, disposeModel } from "../../../training/model/forward.ts";
import { type Graph, paramSpecs } from "../../../training/model/graph.ts";
import { architecture } from "../../../training/model/resnet.ts";
import { Sgd } from "../../../training/engine/optimizer.ts";
import { lossAndGradients, trainStep } from "../../../training/engine/step.ts";
import { randomValues, useBackend } from "./gradcheck.ts";

const INPUT = { height: 16, width: 16, channels: 1 };
const BATCH = 4;
const CLASSES = 10;
/** Small widths, the same shapes: 8/16/32 channels for the teacher, 4/8/16 for narrow-deep. */
const MODELS = [
  ["teacher", 0.25],
  ["unmodified", 0.5],
  ["wide", 0.5],
  ["narrow-deep", 0.5],
] as const;

/** Where a backend may differ from cpu: max |a - b| over the tensor's largest |b| and, more robust to a ReLU input near 0 flipping sign, the L2 norm of the difference over that of b. */
function errors(actual: Float32Array, expected: Float32Array): { max: number; l2: number } {
  let [diff, scale, d2, n2] = [0, 0, 0, 0];
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i]! - expected[i]!;
    diff = Math.max(diff, Math.abs(d));
    scale = Math.max(scale, Math.abs(expected[i]!));
    d2 += d * d;
    n2 += expected[i]! * expected[i]!;
  }
  return { max: scale === 0 ? diff : diff / scale, l2: n2 === 0 ? Math.sqrt(d2) : Math.sqrt(d2 / n2) };
}

/** The same weights on whatever backend is active: initialized once (cpu), copied by value. */
function modelFrom(graph: Graph, values: Map<string, Float32Array>): Model {
  const params = new Map(
    paramSpecs(graph).map((s) => [
      s.name,
      tf.variable(tf.tensor(values.get(s.name)!, s.shape), s.kind === "trainable"),
    ]),
  );
  return { graph, params };
}

function initialValues(graph: Graph): Map<string, Float32Array> {
  // He-like random weights and batch-norm scales around 1, so that every gradient is non-zero.
  return new Map(
    paramSpecs(graph).map((s, i) => {
      const raw = randomValues(
        s.shape.reduce((a, b) => a * b, 1),
        100 + i,
      );
      if (s.name.endsWith("movingVariance") || s.name.endsWith("gamma")) return [s.name, raw.map((v) => 1 + 0.3 * v)];
      const fanIn = s.shape.length === 4 ? s.shape[0]! * s.shape[1]! * s.shape[2]! : s.shape[0]!;
      return [s.name, raw.map((v) => v * 1.7 * Math.sqrt(2 / fanIn))];
    }),
  );
}

interface StepResult {
  loss: number;
  /** Trainable gradients, then every parameter after the step's moving-statistics update, by name. */
  tensors: Map<string, Float32Array>;
}

const kd = createLoss("kd", { temperature: 4, alpha: 0.9 });
const batch = {
  images: randomValues(BATCH * INPUT.height * INPUT.width * INPUT.channels, 7),
  labels: Int32Array.from({ length: BATCH }, (_, i) => (i * 3) % CLASSES),
  size: BATCH,
};
const teacherLogits = randomValues(BATCH * CLASSES, 9).map((v) => 4 * v);

/** One KD step's loss, gradients and moving statistics on the active backend. */
function kdStep(graph: Graph, values: Map<string, Float32Array>): StepResult {
  const model = modelFrom(graph, values);
  const g = lossAndGradients(model, batch, kd, teacherLogits);
  const tensors = new Map<string, Float32Array>();
  for (const [name, grad] of g.grads) tensors.set(`grad ${name}`, grad.dataSync() as Float32Array);
  for (const [name, p] of model.params) tensors.set(name, p.dataSync() as Float32Array);
  tf.dispose([...g.grads.values()]);
  disposeModel(model);
  return { loss: g.loss, tensors };
}

/**
 * Float32 rounding differs by kernel and summation order and grows with depth (narrow-deep has 29
 * convolutions): measured worst here 2e-5 (L2) on tfjs-node, so the limits leave 5x. A wrong padding,
 * stride or gradient formula gives errors of order 1.
 */
const LIMIT = { l2: 1e-4, max: 1e-3 };

function expectParity(got: StepResult, want: StepResult, label: string): void {
  expect(Math.abs(got.loss - want.loss) / Math.abs(want.loss), `${label}: loss`).toBeLessThan(LIMIT.l2);
  expect([...got.tensors.keys()]).toEqual([...want.tensors.keys()]);
  let worst = { l2: 0, max: 0 };
  for (const [name, expected] of want.tensors) {
    const e = errors(got.tensors.get(name)!, expected);
    expect(e.l2, `${label}: ${name} (L2)`).toBeLessThan(LIMIT.l2);
    expect(e.max, `${label}: ${name} (max)`).toBeLessThan(LIMIT.max);
    worst = { l2: Math.max(worst.l2, e.l2), max: Math.max(worst.max, e.max) };
  }
  console.log(
    `${label}: worst relative error over ${want.tensors.size} tensors: L2 ${worst.l2.toExponential(1)}, max ${worst.max.toExponential(1)}`,
  );
}

/** The native package under test: tfjs-node, or tfjs-node-gpu on a GPU machine (scripts/gpu-check.sh sets it). */
const NATIVE = process.env.NARROWDEEP_NATIVE_PACKAGE ?? "@tensorflow/tfjs-node";

/** tfjs-node, when the package is installed and its binding loads; else why not. */
async function loadNode(): Promise<string | null> {
  try {
    await importNative(NATIVE);
    return null;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === "ERR_MODULE_NOT_FOUND" || e.code === "MODULE_NOT_FOUND")
      return `${NATIVE} is not installed (npm run setup:tfjs-node builds it)`;
    return `${NATIVE} does not load: ${(e.message ?? String(err)).split("\n")[0]}`;
  }
}

const nodeMissing = await loadNode();
if (nodeMissing) console.warn(`backend parity: tfjs-node NOT TESTED here: ${nodeMissing}`);
const nativeDevice = () =>
  (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice ? "CUDA GPU" : "CPU";

describe.each(MODELS)("%s (width x%s): one KD training step", (name, width) => {
  const graph = architecture(name, INPUT, CLASSES, width);
  let reference: StepResult;

  beforeAll(async () => {
    await useBackend("cpu");
    reference = kdStep(graph, initialValues(graph));
  });

  it("wasm (project kernels, native convolutions) matches cpu", async () => {
    await useBackend("cpu");
    const values = initialValues(graph);
    useNativeConvolutions(true);
    await useBackend("wasm");
    expectParity(kdStep(graph, values), reference, `${name} wasm`);
  });

  it.skipIf(nodeMissing !== null)(
    `tfjs-node matches cpu${nodeMissing ? ` (skipped: ${nodeMissing})` : ""}`,
    async () => {
      await useBackend("cpu");
      const values = initialValues(graph);
      await tf.setBackend("tensorflow");
      expectParity(kdStep(graph, values), reference, `${name} ${NATIVE} (${nativeDevice()})`);
    },
  );

  it.skipIf(nodeMissing !== null)(
    `tfjs-node trains it: 4 SGD steps lower the loss${nodeMissing ? ` (skipped: ${nodeMissing})` : ""}`,
    async () => {
      await useBackend("cpu");
      const values = initialValues(graph);
      await tf.setBackend("tensorflow");
      const model = modelFrom(graph, values);
      const sgd = new Sgd(model.params, { momentum: 0.9, weightDecay: 5e-4, nesterov: true });
      const losses = Array.from({ length: 4 }, () => trainStep(model, sgd, batch, kd, teacherLogits, 0.05).loss);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses.at(-1)!).toBeLessThan(losses[0]!);
      disposeModel(model);
    },
  );
});
