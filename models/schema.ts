// The contract between the two halves: training/ writes models/manifest.json, src/ reads it.
// Pure TypeScript with no imports, so both the Worker and Node code can use it.

export const MANIFEST_SCHEMA_VERSION = 1;

export type Role = "teacher" | "student";
export type Layout = "NCHW" | "NHWC";

export interface TensorSpec {
  name: string;
  /** -1 marks the batch dimension. */
  shape: number[];
  datatype: "FP32";
}

export interface InputSpec extends TensorSpec {
  layout: Layout;
}

export interface AccuracyFigure {
  /** Fraction in [0, 1], measured on this ONNX file. */
  top1: number;
  dataset: string;
  split: string;
  samples: number;
  /** When the run trained this model with several seeds: all of them (this file is one). */
  seeds?: SeedAccuracy;
  /**
   * Multi-label models: mean average precision over the classes present in the split; `top1` is then
   * the fraction of images whose top-scoring class is one of theirs.
   */
  mAP?: number;
}

/**
 * Test top-1 of every seed of a model (the training loop's, on the last epoch), their mean and sample
 * standard deviation, and which seed was shipped: the one closest to the mean.
 */
export interface SeedAccuracy {
  mean: number;
  sd: number;
  n: number;
  bySeed: Record<string, number>;
  shipped: number;
}

export interface ModelMetrics {
  params: number;
  /** Multiply-accumulates for one image. */
  macs: number;
  accuracy?: AccuracyFigure;
}

export interface ExportCheck {
  /**
   * Largest |tfjs logit - onnxruntime logit| over the check images; for a quantized model (one with
   * `quantization`), |fp32 twin's logit - its own|, both in onnxruntime-node.
   */
  maxAbsLogitDiff: number;
  /** Fraction of check images where both engines agree on top-1. */
  top1Agreement: number;
  samples: number;
  opset: number;
  exportedAt: string;
  /** What onnx.checker.check_model(full_check=True) said at export, e.g. "passed (onnx 1.12.0)". */
  checker?: string;
}

/** How a quantized model was made from its fp32 twin (training/export/int8.ts, docs/int8.md). */
export interface Quantization {
  /** Name of the fp32 model it was quantized from, and that file's sha256 at the time. */
  twin: string;
  twinSha256: string;
  /** "qdq": QuantizeLinear/DequantizeLinear pairs in a standard ONNX graph. */
  format: string;
  weights: string;
  activations: string;
  bias: string;
  /** Where the activation ranges come from: never the test split. */
  calibration: { dataset: string; split: string; samples: number; method: string; percentile?: number };
  /** Mean |logit difference| from the twin over the mean |twin logit|, on the check images. */
  relativeLogitError: number;
  /** What the export required of it against its twin. */
  tolerance: { maxRelativeLogitError: number };
  /** What ran it for the figures (accuracy, export check). */
  runtime: string;
  /**
   * Top-1 of the file in each runtime it is run in (the Worker's onnxruntime-web, onnxruntime-node's
   * default session on a named CPU), on the test images of metrics.accuracy, beside its twin's on the
   * same images, and what the export required. Absent in entries written before it was checked.
   */
  portability?: Portability;
}

export interface Portability {
  twinTop1: number;
  runtimes: { runtime: string; session: string; top1: number }[];
  tolerance: { maxLossPoints: number; maxGapPoints: number };
}

export interface ModelEntry {
  name: string;
  version: string;
  role: Role;
  /** Preset name of the architecture (e.g. "narrow-deep"). */
  architecture: string;
  /** File name relative to models/. */
  file: string;
  sha256: string;
  bytes: number;
  input: InputSpec;
  /** Always "logits" then "probabilities". */
  outputs: TensorSpec[];
  /**
   * What "probabilities" is. Absent or "softmax": one class per image, the probabilities sum to 1.
   * "sigmoid": a multi-label model, each class's probability on its own (present when above a threshold).
   */
  outputActivation?: "softmax" | "sigmoid";
  /** Applied to pixel values scaled to [0, 1]: (x - mean[c]) / std[c]. */
  normalization: { mean: number[]; std: number[] };
  labels: string[];
  metrics: ModelMetrics;
  export?: ExportCheck;
  /** Free-form training provenance: config, engine, backend, distillation method, teacher. */
  training?: Record<string, unknown>;
  /** Set on a quantized variant of a student. */
  quantization?: Quantization;
}

export interface Manifest {
  schemaVersion: number;
  /** Name of the student /v1/classify uses when no model is named. */
  defaultStudent: string;
  /**
   * Students the Worker serves besides the default one (scripts/bundle-models.ts bundles only those);
   * the others stay in models/ for comparison. Absent: the default student alone.
   */
  serve?: string[];
  models: ModelEntry[];
}

/** What a model name may look like (it is also the file name and part of URLs). */
export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;

export class ManifestError extends Error {
  override name = "ManifestError";
}

type Obj = Record<string, unknown>;

function fail(path: string, msg: string): never {
  throw new ManifestError(`manifest ${path}: ${msg}`);
}
function obj(v: unknown, path: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(path, "must be an object");
  return v as Obj;
}
function str(v: unknown, path: string): string {
  if (typeof v !== "string" || v.length === 0) fail(path, "must be a non-empty string");
  return v;
}
function num(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(path, "must be a finite number");
  return v;
}
function numArray(v: unknown, path: string): number[] {
  if (!Array.isArray(v)) fail(path, "must be an array of numbers");
  return v.map((x, i) => num(x, `${path}[${i}]`));
}
function tensor(v: unknown, path: string): TensorSpec {
  const o = obj(v, path);
  if (o.datatype !== "FP32") fail(`${path}.datatype`, 'must be "FP32"');
  const shape = numArray(o.shape, `${path}.shape`);
  shape.forEach((d, i) => (Number.isInteger(d) && (d > 0 || d === -1)) || fail(`${path}.shape[${i}]`, "must be a positive integer or -1"));
  return { name: str(o.name, `${path}.name`), shape, datatype: "FP32" };
}

function entry(v: unknown, path: string): ModelEntry {
  const o = obj(v, path);
  const role = o.role;
  if (role !== "teacher" && role !== "student") fail(`${path}.role`, 'must be "teacher" or "student"');
  const sha256 = str(o.sha256, `${path}.sha256`);
  if (!/^[0-9a-f]{64}$/.test(sha256)) fail(`${path}.sha256`, "must be 64 lowercase hex digits");
  const inputObj = obj(o.input, `${path}.input`);
  const layout = inputObj.layout;
  if (layout !== "NCHW" && layout !== "NHWC") fail(`${path}.input.layout`, 'must be "NCHW" or "NHWC"');
  const input: InputSpec = { ...tensor(inputObj, `${path}.input`), layout };
  if (input.shape.length !== 4) fail(`${path}.input.shape`, "must have 4 dimensions");
  if (!Array.isArray(o.outputs) || o.outputs.length === 0) fail(`${path}.outputs`, "must be a non-empty array");
  const outputs = o.outputs.map((t, i) => tensor(t, `${path}.outputs[${i}]`));
  const norm = obj(o.normalization, `${path}.normalization`);
  const channels = layout === "NCHW" ? input.shape[1]! : input.shape[3]!;
  const mean = numArray(norm.mean, `${path}.normalization.mean`);
  const std = numArray(norm.std, `${path}.normalization.std`);
  if (mean.length !== channels || std.length !== channels) fail(`${path}.normalization`, `needs ${channels} mean and std values`);
  if (std.some((s) => s <= 0)) fail(`${path}.normalization.std`, "must be positive");
  if (!Array.isArray(o.labels) || o.labels.length === 0) fail(`${path}.labels`, "must be a non-empty array");
  const labels = o.labels.map((l, i) => str(l, `${path}.labels[${i}]`));
  const m = obj(o.metrics, `${path}.metrics`);
  const metrics: ModelMetrics = { params: num(m.params, `${path}.metrics.params`), macs: num(m.macs, `${path}.metrics.macs`) };
  if (m.accuracy !== undefined) {
    const a = obj(m.accuracy, `${path}.metrics.accuracy`);
    metrics.accuracy = {
      top1: num(a.top1, `${path}.metrics.accuracy.top1`),
      dataset: str(a.dataset, `${path}.metrics.accuracy.dataset`),
      split: str(a.split, `${path}.metrics.accuracy.split`),
      samples: num(a.samples, `${path}.metrics.accuracy.samples`),
    };
    if (a.mAP !== undefined) metrics.accuracy.mAP = num(a.mAP, `${path}.metrics.accuracy.mAP`);
    if (a.seeds !== undefined) {
      const s = obj(a.seeds, `${path}.metrics.accuracy.seeds`);
      const by = obj(s.bySeed, `${path}.metrics.accuracy.seeds.bySeed`);
      metrics.accuracy.seeds = {
        mean: num(s.mean, `${path}.metrics.accuracy.seeds.mean`),
        sd: num(s.sd, `${path}.metrics.accuracy.seeds.sd`),
        n: num(s.n, `${path}.metrics.accuracy.seeds.n`),
        bySeed: Object.fromEntries(Object.entries(by).map(([k, v]) => [k, num(v, `${path}.metrics.accuracy.seeds.bySeed.${k}`)])),
        shipped: num(s.shipped, `${path}.metrics.accuracy.seeds.shipped`),
      };
    }
  }
  const out: ModelEntry = {
    name: str(o.name, `${path}.name`),
    version: str(o.version, `${path}.version`),
    role,
    architecture: str(o.architecture, `${path}.architecture`),
    file: str(o.file, `${path}.file`),
    sha256,
    bytes: num(o.bytes, `${path}.bytes`),
    input,
    outputs,
    normalization: { mean, std },
    labels,
    metrics,
  };
  if (!MODEL_NAME_PATTERN.test(out.name)) fail(`${path}.name`, "must be lowercase letters, digits, '.', '_' or '-'");
  if (out.file.includes("/") || out.file.includes("..")) fail(`${path}.file`, "must be a plain file name inside models/");
  if (o.export !== undefined) {
    const e = obj(o.export, `${path}.export`);
    out.export = {
      maxAbsLogitDiff: num(e.maxAbsLogitDiff, `${path}.export.maxAbsLogitDiff`),
      top1Agreement: num(e.top1Agreement, `${path}.export.top1Agreement`),
      samples: num(e.samples, `${path}.export.samples`),
      opset: num(e.opset, `${path}.export.opset`),
      exportedAt: str(e.exportedAt, `${path}.export.exportedAt`),
    };
    if (e.checker !== undefined) out.export.checker = str(e.checker, `${path}.export.checker`);
  }
  if (o.training !== undefined) out.training = obj(o.training, `${path}.training`);
  if (o.outputActivation !== undefined) {
    if (o.outputActivation !== "softmax" && o.outputActivation !== "sigmoid") fail(`${path}.outputActivation`, 'must be "softmax" or "sigmoid"');
    out.outputActivation = o.outputActivation;
  }
  if (o.quantization !== undefined) out.quantization = quantization(o.quantization, `${path}.quantization`);
  return out;
}

function quantization(v: unknown, path: string): Quantization {
  const q = obj(v, path);
  const c = obj(q.calibration, `${path}.calibration`);
  const t = obj(q.tolerance, `${path}.tolerance`);
  const twinSha256 = str(q.twinSha256, `${path}.twinSha256`);
  if (!/^[0-9a-f]{64}$/.test(twinSha256)) fail(`${path}.twinSha256`, "must be 64 lowercase hex digits");
  return {
    twin: str(q.twin, `${path}.twin`),
    twinSha256,
    format: str(q.format, `${path}.format`),
    weights: str(q.weights, `${path}.weights`),
    activations: str(q.activations, `${path}.activations`),
    bias: str(q.bias, `${path}.bias`),
    calibration: {
      dataset: str(c.dataset, `${path}.calibration.dataset`),
      split: str(c.split, `${path}.calibration.split`),
      samples: num(c.samples, `${path}.calibration.samples`),
      method: str(c.method, `${path}.calibration.method`),
      ...(c.percentile !== undefined ? { percentile: num(c.percentile, `${path}.calibration.percentile`) } : {}),
    },
    relativeLogitError: num(q.relativeLogitError, `${path}.relativeLogitError`),
    tolerance: { maxRelativeLogitError: num(t.maxRelativeLogitError, `${path}.tolerance.maxRelativeLogitError`) },
    runtime: str(q.runtime, `${path}.runtime`),
    ...(q.portability !== undefined ? { portability: portability(q.portability, `${path}.portability`) } : {}),
  };
}

function portability(v: unknown, path: string): Portability {
  const p = obj(v, path);
  const t = obj(p.tolerance, `${path}.tolerance`);
  const share = (x: unknown, at: string) => {
    const n = num(x, at);
    if (n < 0 || n > 1) fail(at, "must be a share between 0 and 1");
    return n;
  };
  if (!Array.isArray(p.runtimes) || p.runtimes.length === 0) fail(`${path}.runtimes`, "must be a non-empty array");
  return {
    twinTop1: share(p.twinTop1, `${path}.twinTop1`),
    runtimes: p.runtimes.map((r, i) => {
      const o = obj(r, `${path}.runtimes[${i}]`);
      return { runtime: str(o.runtime, `${path}.runtimes[${i}].runtime`), session: str(o.session, `${path}.runtimes[${i}].session`), top1: share(o.top1, `${path}.runtimes[${i}].top1`) };
    }),
    tolerance: { maxLossPoints: num(t.maxLossPoints, `${path}.tolerance.maxLossPoints`), maxGapPoints: num(t.maxGapPoints, `${path}.tolerance.maxGapPoints`) },
  };
}

/** The optional list of served students: names of students in models. */
function serveList(v: unknown, models: ModelEntry[]): string[] {
  if (!Array.isArray(v)) fail("serve", "must be an array of student names");
  return v.map((n, i) => {
    const name = str(n, `serve[${i}]`);
    const m = models.find((e) => e.name === name);
    if (!m) fail(`serve[${i}]`, `"${name}" is not a model in models`);
    if (m.role !== "student") fail(`serve[${i}]`, `"${name}" is a ${m.role}; the Worker serves students only`);
    return name;
  });
}

/** Validates parsed JSON as a manifest; throws ManifestError naming the offending field. */
export function parseManifest(json: unknown): Manifest {
  const o = obj(json, "(root)");
  if (o.schemaVersion !== MANIFEST_SCHEMA_VERSION) fail("schemaVersion", `must be ${MANIFEST_SCHEMA_VERSION}`);
  if (!Array.isArray(o.models)) fail("models", "must be an array");
  const models = o.models.map((m, i) => entry(m, `models[${i}]`));
  const seen = new Set<string>();
  for (const m of models) {
    if (seen.has(m.name)) fail("models", `duplicate model name "${m.name}"`);
    seen.add(m.name);
  }
  const defaultStudent = str(o.defaultStudent, "defaultStudent");
  if (models.length > 0 && !models.some((m) => m.name === defaultStudent && m.role === "student")) {
    fail("defaultStudent", `"${defaultStudent}" is not a student in models`);
  }
  return { schemaVersion: MANIFEST_SCHEMA_VERSION, defaultStudent, ...(o.serve !== undefined ? { serve: serveList(o.serve, models) } : {}), models };
}
