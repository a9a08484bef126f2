// Small ONNX students for the edge tests, made by the project's own exporter from seeded random
// weights (no binary of unknown origin), with onnxruntime-node's outputs on fixed inputs as the
// reference the Worker must match. Runs in Node (vitest globalSetup, bench).
import { createHash } from "node:crypto";
import * as ort from "onnxruntime-node";
import type { Manifest, ModelEntry } from "../../../models/schema.ts";
import { graphToOnnx } from "../../../training/export/onnx.ts";
import { type Graph, countMacs, countParams, paramSpecs } from "../../../training/model/graph.ts";
import { architecture } from "../../../training/model/resnet.ts";
import type { EdgeFixtures, ReferenceRun } from "../fixture-types.ts";

const FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
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
      else if (field === "gamma") t[i] = 0.5 + 0.3 * u(); // below 1, so 24 residual blocks keep logits moderate
      else t[i] = 0.1 * n(); // beta, movingMean, bias
    }
    tensors.set(spec.name, t);
  }
  return tensors;
}

interface Spec {
  name: string;
  architecture: string;
  height: number;
  width: number;
  channels: number;
  widthScale: number;
  labels: string[];
  mean: number[];
  std: number[];
  seed: number;
}

const SPECS: Spec[] = [
  { name: "grey28", architecture: "narrow-deep", height: 28, width: 28, channels: 1, widthScale: 0.5, labels: FASHION_LABELS, mean: [0.286], std: [0.353], seed: 1 },
  { name: "rgb32", architecture: "unmodified", height: 32, width: 32, channels: 3, widthScale: 0.25, labels: CIFAR_LABELS, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616], seed: 2 },
];

function entryFor(spec: Spec, graph: Graph, bytes: Uint8Array): ModelEntry {
  return {
    name: spec.name,
    version: "1",
    role: "student",
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
  };
}

async function reference(entry: ModelEntry, bytes: Uint8Array, batch: number, seed: number): Promise<ReferenceRun> {
  const dims = [batch, ...entry.input.shape.slice(1)];
  const n = normal(uniform(seed));
  const input = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => n());
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
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

/** The fixture models (as ONNX bytes by file name), their manifest, and reference runs. */
export async function buildFixtureModels(): Promise<{ manifest: Manifest; files: Map<string, Uint8Array>; references: ReferenceRun[] }> {
  const files = new Map<string, Uint8Array>();
  const models: ModelEntry[] = [];
  const references: ReferenceRun[] = [];
  for (const spec of SPECS) {
    const graph = architecture(spec.architecture, { height: spec.height, width: spec.width, channels: spec.channels }, spec.labels.length, spec.widthScale);
    const bytes = graphToOnnx({ graph, tensors: randomWeights(graph, spec.seed) });
    const entry = entryFor(spec, graph, bytes);
    files.set(entry.file, bytes);
    models.push(entry);
    references.push(await reference(entry, bytes, 1, spec.seed + 100), await reference(entry, bytes, 3, spec.seed + 200));
  }
  return { manifest: { schemaVersion: 1, defaultStudent: "grey28", models }, files, references };
}

export async function buildFixtures(): Promise<EdgeFixtures> {
  const { manifest, files, references } = await buildFixtureModels();
  return { manifest, files: Object.fromEntries([...files].map(([k, v]) => [k, Buffer.from(v).toString("base64")])), references };
}
