// Small ONNX students for the edge tests, made by the project's own exporter from seeded random
// weights (no binary of unknown origin), with onnxruntime-node's outputs on fixed inputs as the
// reference the Worker must match. Runs in Node (vitest globalSetup, bench).
import { createHash } from "node:crypto";
import { encode as encodeJpeg } from "jpeg-js";
import * as ort from "onnxruntime-node";
import type { Manifest, ModelEntry } from "../../../models/schema.ts";
import { calibrate } from "../../../training/export/calibrate.ts";
import { openInt8Session } from "../../../training/export/int8.ts";
import { graphToOnnx } from "../../../training/model/to-onnx.ts";
import { decodeModel } from "../../../training/onnx/proto.ts";
import { planQdq, toQdq } from "../../../training/export/quantize.ts";
import { type Graph, countMacs, countParams, paramSpecs } from "../../../training/model/graph.ts";
import { architecture } from "../../../training/model/resnet.ts";
import { FASHION_MNIST_CLASSES } from "../../../training/data/fashion-mnist.ts";
import type { EdgeFixtures, ReferenceRun } from "../fixture-types.ts";

export const FASHION_LABELS = FASHION_MNIST_CLASSES;
const CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/** mulberry32: a seeded uniform generator, so fixtures are the same on every machine. */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(u: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** Weights as the trainer initializes them, with batch-norm statistics moved off 0/1 so folding matters. */
function randomWeights(graph: Graph, seed: number): Map<string, Float32Array> {
  const u = uniform(seed);
  const n = normal(u);
  const tensors = new Map<string, Float32Array>();
  for (const spec of paramSpecs(graph)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const field = spec.name.slice(spec.name.lastIndexOf(".") + 1);
    const t = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      if (spec.init === "he") t[i] = n() * Math.sqrt(2 / (spec.shape[0]! * spec.shape[1]! * spec.shape[3]!));
      else if (spec.init === "glorot") t[i] = (u() * 2 - 1) * Math.sqrt(6 / (spec.shape[0]! + spec.shape[1]!));
      else if (field === "movingVariance") t[i] = 0.5 + u();
      else if (field === "gamma")
        t[i] = 0.5 + 0.3 * u(); // below 1, so 24 residual blocks keep logits moderate
      else t[i] = 0.1 * n(); // beta, movingMean, bias
    }
    tensors.set(spec.name, t);
  }
  return tensors;
}

export interface Spec {
  name: string;
  /** "student" unless given. */
  role?: ModelEntry["role"];
  architecture: string;
  height: number;
  width: number;
  channels: number;
  widthScale: number;
  labels: string[];
  mean: number[];
  std: number[];
  seed: number;
  /** "sigmoid": a multi-label model (per-class probabilities). */
  activation?: "softmax" | "sigmoid";
}

const SPECS: Spec[] = [
  {
    name: "grey28",
    architecture: "narrow-deep",
    height: 28,
    width: 28,
    channels: 1,
    widthScale: 0.5,
    labels: FASHION_LABELS,
    mean: [0.286],
    std: [0.353],
    seed: 1,
  },
  {
    name: "rgb32",
    architecture: "unmodified",
    height: 32,
    width: 32,
    channels: 3,
    widthScale: 0.25,
    labels: CIFAR_LABELS,
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.247, 0.2435, 0.2616],
    seed: 2,
  },
];

const MULTI_LABEL: Spec = {
  name: "tags28",
  architecture: "wide",
  height: 28,
  width: 28,
  channels: 1,
  widthScale: 0.25,
  labels: ["person", "dog", "car", "chair"],
  mean: [0.5],
  std: [0.25],
  seed: 4,
  activation: "sigmoid",
};

function entryFor(spec: Spec, graph: Graph, bytes: Uint8Array): ModelEntry {
  return {
    name: spec.name,
    version: "1",
    role: spec.role ?? "student",
    architecture: spec.architecture,
    file: `${spec.name}.onnx`,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    bytes: bytes.length,
    input: { name: "input", shape: [-1, spec.channels, spec.height, spec.width], datatype: "FP32", layout: "NCHW" },
    outputs: [
      { name: "logits", shape: [-1, spec.labels.length], datatype: "FP32" },
      { name: "probabilities", shape: [-1, spec.labels.length], datatype: "FP32" },
    ],
    normalization: { mean: spec.mean, std: spec.std },
    labels: spec.labels,
    metrics: { params: countParams(graph), macs: countMacs(graph) },
    ...(spec.activation === "sigmoid" ? { outputActivation: "sigmoid" as const } : {}),
  };
}

async function reference(
  entry: ModelEntry,
  bytes: Uint8Array,
  batch: number,
  seed: number,
  open = (b: Uint8Array) => ort.InferenceSession.create(b, { intraOpNumThreads: 1 }),
): Promise<ReferenceRun> {
  const dims = [batch, ...entry.input.shape.slice(1)];
  const n = normal(uniform(seed));
  const input = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => n());
  const session = await open(bytes);
  const out = await session.run({ input: new ort.Tensor("float32", input, dims) });
  await session.release();
  return {
    model: entry.name,
    dims,
    input: Array.from(input),
    logits: Array.from(out.logits!.data as Float32Array),
    probabilities: Array.from(out.probabilities!.data as Float32Array),
  };
}

/** One fixture model from its spec: the exporter's ONNX of seeded weights, and its manifest entry. */
export function buildModel(spec: Spec): { entry: ModelEntry; bytes: Uint8Array } {
  const graph = architecture(
    spec.architecture,
    { height: spec.height, width: spec.width, channels: spec.channels },
    spec.labels.length,
    spec.widthScale,
  );
  const bytes = graphToOnnx({ graph, tensors: randomWeights(graph, spec.seed) }, { activation: spec.activation });
  return { entry: entryFor(spec, graph, bytes), bytes };
}

/** The exporter's int8 (QDQ) variant of a fixture model, calibrated on 64 seeded random inputs. */
async function int8Model(
  entry: ModelEntry,
  bytes: Uint8Array,
  seed: number,
): Promise<{ entry: ModelEntry; bytes: Uint8Array }> {
  const model = decodeModel(bytes);
  const plan = planQdq(model);
  const [, channels, height, width] = entry.input.shape as [number, number, number, number];
  const n = normal(uniform(seed));
  const images = {
    data: Float32Array.from({ length: 64 * channels * height * width }, () => n()),
    count: 64,
    height,
    width,
    channels,
  };
  const q = toQdq(model, plan, await calibrate(model, plan.tensors, images, { method: "minmax" }));
  const name = `${entry.name}-int8`;
  return {
    entry: {
      ...entry,
      name,
      file: `${name}.onnx`,
      sha256: createHash("sha256").update(q).digest("hex"),
      bytes: q.length,
    },
    bytes: q,
  };
}

/** The fixture models (as ONNX bytes by file name), their manifest, and reference runs. */
export async function buildFixtureModels(): Promise<{
  manifest: Manifest;
  files: Map<string, Uint8Array>;
  references: ReferenceRun[];
}> {
  const files = new Map<string, Uint8Array>();
  const models: ModelEntry[] = [];
  const references: ReferenceRun[] = [];
  for (const spec of SPECS) {
    const { entry, bytes } = buildModel(spec);
    files.set(entry.file, bytes);
    models.push(entry);
    references.push(
      await reference(entry, bytes, 1, spec.seed + 100),
      await reference(entry, bytes, 3, spec.seed + 200),
    );
  }
  // grey28-int8, served by name like the others (test/src/int8.test.ts); its reference keeps the Q/DQ
  // nodes (training/export/int8.ts says why).
  const int8 = await int8Model(models[0]!, files.get(models[0]!.file)!, SPECS[0]!.seed + 300);
  files.set(int8.entry.file, int8.bytes);
  models.push(int8.entry);
  references.push(await reference(int8.entry, int8.bytes, 3, SPECS[0]!.seed + 200, openInt8Session));
  // tags28: a multi-label model (sigmoid probabilities, test/src/multilabel.test.ts).
  const tags = buildModel(MULTI_LABEL);
  files.set(tags.entry.file, tags.bytes);
  models.push(tags.entry);
  references.push(await reference(tags.entry, tags.bytes, 1, MULTI_LABEL.seed + 100));
  return { manifest: { schemaVersion: 1, defaultStudent: "grey28", models }, files, references };
}

/** RGB JPEGs: one colour all over (41x29, odd), and a gradient (64x48). */
function colourJpegs(): Record<string, Uint8Array> {
  const image = (width: number, height: number, rgb: (x: number, y: number) => [number, number, number]) => {
    const data = new Uint8Array(width * height * 4);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([...rgb(x, y), 255], (y * width + x) * 4);
    return new Uint8Array(encodeJpeg({ width, height, data }, 95).data);
  };
  return {
    "uniform-rgb": image(41, 29, () => [200, 100, 50]),
    gradient: image(64, 48, (x, y) => [x * 4, y * 5, 128]),
  };
}

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const base64Record = (entries: Iterable<[string, Uint8Array]>) =>
  Object.fromEntries([...entries].map(([k, v]) => [k, base64(v)]));

export async function buildFixtures(): Promise<EdgeFixtures> {
  const { manifest, files, references } = await buildFixtureModels();
  return { manifest, files: base64Record(files), references, jpegs: base64Record(Object.entries(colourJpegs())) };
}
