// The experiment configuration of `npm run distill`: one flat object, every field described once
// here (type, check, help), so the config file, the command line and --help all come from this table.
import { DATASETS, parseSize } from "../data/index.ts";
import { ARCHITECTURES } from "../model/resnet.ts";

/** What computes the teacher's soft targets (see training/train/teacher.ts). */
export const TEACHER_ENGINES = ["auto", "onnx", "tfjs"] as const;
/**
 * What computes convolutions on the wasm backend: "native" is onnxruntime's CPU kernels
 * (engine/native-conv.ts), "wasm" XNNPACK inside the wasm backend, "auto" native where onnxruntime-node loads.
 */
export const CONVOLUTIONS = ["auto", "native", "wasm"] as const;
export type Convolutions = (typeof CONVOLUTIONS)[number];
export type TeacherEngine = (typeof TEACHER_ENGINES)[number];

export interface DistillConfig {
  dataset: string;
  /** Folder of the data set's files; null: the data set's standard location. */
  data: string | null;
  trainLimit: number;
  valSize: number;
  testLimit: number;
  students: string[];
  widthScale: number;
  teacherWidthScale: number;
  epochs: number;
  teacherEpochs: number;
  batchSize: number;
  evalBatchSize: number;
  learningRate: number;
  schedule: "cosine" | "step";
  milestones: number[];
  gamma: number;
  warmupEpochs: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  temperature: number;
  alpha: number;
  augment: boolean;
  /** Null: the data set's default (2 px for 28x28, 4 px for 32x32). */
  cropPadding: number | null;
  flip: boolean;
  /** Probability of random erasing of a student's training image (0: none). */
  erasing: number;
  /** The same for the teacher's training images. */
  teacherErasing: number;
  seed: number;
  /** Students are trained once per seed: seed, seed + 1, ... (the teacher and the data split use `seed`). */
  seeds: number;
  backend: string;
  /** Data-parallel threads on the wasm backend; 0: one per idle core (at most 8). */
  replicas: number;
  /** What computes convolutions on the wasm backend: auto, native (onnxruntime) or wasm (XNNPACK). */
  convolutions: Convolutions;
  teacherEngine: TeacherEngine;
  /** Cache the teacher's logits per augmented view (exact; train/teacher-cache.ts). */
  teacherCache: boolean;
  checkpointMinutes: number;
  // Fields added after the first runs were stored are optional: a configuration stored without them
  // reads as their default, which is what those runs did.
  /** Data sets of image files (folder, voc): "32" or "WxH"; null: the size most training images have. */
  inputSize?: string | null;
  /** Image files: 1 (grey) or 3 (RGB); null: grey only when every training image is grey. */
  channels?: number | null;
  /** Image files: skip (and report) images that cannot be read or decoded; false refuses the data set. */
  skipUnreadable?: boolean;
  /** Image files: fraction of the training images held out for each split the data set lacks (val, test). */
  holdout?: number;
  /** Distillation methods (loss registry names): one student sub-run per method and architecture. Default ["kd"]. */
  loss?: string[];
  /** Options of methods other than kd, by method (kd takes temperature and alpha): {"dkd": {"beta": 8}}. */
  lossOptions?: Record<string, Record<string, number>>;
  /** A teacher given as an ONNX file: its input layout, NCHW or NHWC; null: its metadata, else its input shape. */
  teacherLayout?: string | null;
  /** ONNX teacher: input size "N" or "WxH"; null: its metadata or input shape, else the data's size. */
  teacherInputSize?: string | null;
  /** ONNX teacher: per-channel normalization it expects; null: its metadata, else the data's own. */
  teacherMean?: number[] | null;
  teacherStd?: number[] | null;
  /** ONNX teacher: the output holding its logits; null: "logits", else the one output with one value per class. */
  teacherOutput?: string | null;
  /** ONNX teacher: a file of its class names in the order of its outputs (JSON list or one a line); null: its metadata's. */
  teacherLabels?: string | null;
  /** Optimizer steps between the step records of metrics.jsonl (epoch records come at every epoch's end). */
  metricsEvery?: number;
}

type Kind = "string" | "int" | "number" | "boolean" | "list" | "numbers" | "options";

interface Field {
  kind: Kind;
  nullable?: boolean;
  /** How --help shows the value (default by kind: N, NAME, A,B). */
  placeholder?: string;
  help: string;
  /** Returns an error message, or null when the value is fine. */
  check?: (v: never) => string | null;
}

const positive = (v: number) => (v > 0 ? null : "must be > 0");
const atLeast = (min: number) => (v: number) => (v >= min ? null : `must be >= ${min}`);
const oneOf = (options: readonly string[]) => (v: string) =>
  options.includes(v) ? null : `must be one of: ${options.join(", ")}`;
const size = (v: string) => (parseSize(v) ? null : 'must be a size such as "32" or "64x48" (width x height)');
const fraction = (v: number) => (v > 0 && v < 0.5 ? null : "must be a fraction between 0 and 0.5");

export const FIELDS: Record<keyof DistillConfig, Field> = {
  dataset: { kind: "string", help: "data set", check: oneOf(Object.keys(DATASETS)) },
  data: {
    kind: "string",
    nullable: true,
    placeholder: "DIR",
    help: "folder with the data set's files (default: its standard location)",
  },
  trainLimit: { kind: "int", help: "training images to use, 0 = all", check: atLeast(0) },
  valSize: { kind: "int", help: "training images held out for validation", check: atLeast(0) },
  testLimit: { kind: "int", help: "test images to evaluate on, 0 = all", check: atLeast(0) },
  students: {
    kind: "list",
    help: "student architectures",
    check: (v: string[]) => {
      const bad = v.filter((s) => s === "teacher" || !Object.hasOwn(ARCHITECTURES, s));
      return v.length === 0
        ? "must name at least one student"
        : bad.length
          ? `unknown student ${bad.join(", ")} (known: ${Object.keys(ARCHITECTURES)
              .filter((a) => a !== "teacher")
              .join(", ")})`
          : null;
    },
  },
  widthScale: { kind: "number", help: "multiplies every student width", check: positive },
  teacherWidthScale: { kind: "number", help: "multiplies every teacher width", check: positive },
  epochs: { kind: "int", help: "epochs per student", check: atLeast(1) },
  teacherEpochs: { kind: "int", help: "epochs of the teacher", check: atLeast(1) },
  batchSize: { kind: "int", help: "training batch size", check: atLeast(2) },
  evalBatchSize: { kind: "int", help: "evaluation batch size", check: atLeast(1) },
  learningRate: { kind: "number", help: "peak learning rate", check: positive },
  schedule: { kind: "string", help: "learning-rate schedule: cosine or step", check: oneOf(["cosine", "step"]) },
  milestones: {
    kind: "numbers",
    help: "step schedule: fractions of the epochs where the rate drops",
    check: (v: number[]) => (v.every((m) => m > 0 && m < 1) ? null : "must be fractions between 0 and 1"),
  },
  gamma: { kind: "number", help: "step schedule: factor at each milestone", check: positive },
  warmupEpochs: { kind: "number", help: "linear warm-up epochs", check: atLeast(0) },
  momentum: {
    kind: "number",
    help: "SGD momentum",
    check: (v: number) => (v >= 0 && v < 1 ? null : "must be in [0, 1)"),
  },
  nesterov: { kind: "boolean", help: "Nesterov momentum" },
  weightDecay: { kind: "number", help: "L2 weight decay on kernels", check: atLeast(0) },
  temperature: { kind: "number", help: "KD temperature T", check: positive },
  alpha: {
    kind: "number",
    help: "KD weight of the soft term",
    check: (v: number) => (v >= 0 && v <= 1 ? null : "must be in [0, 1]"),
  },
  augment: { kind: "boolean", help: "augment training images (crop and flip below)" },
  cropPadding: {
    kind: "int",
    nullable: true,
    help: "random-crop padding in pixels, 0 = no crop (default: per data set)",
    check: atLeast(0),
  },
  flip: { kind: "boolean", help: "random horizontal flips" },
  erasing: {
    kind: "number",
    help: "probability of random erasing (Zhong et al.) of a student's training image",
    check: (v: number) => (v >= 0 && v <= 1 ? null : "must be in [0, 1]"),
  },
  teacherErasing: {
    kind: "number",
    help: "probability of random erasing of a teacher's training image",
    check: (v: number) => (v >= 0 && v <= 1 ? null : "must be in [0, 1]"),
  },
  seed: { kind: "int", help: "seed of weights, data order, splits and augmentation", check: atLeast(0) },
  seeds: {
    kind: "int",
    help: "train every student with seeds seed, seed+1, ... (mean and sd in the report)",
    check: atLeast(1),
  },
  backend: {
    kind: "string",
    help: "tfjs backend: auto, node-gpu, node, wasm or cpu",
    check: oneOf(["auto", "node-gpu", "node", "wasm", "cpu"]),
  },
  replicas: {
    kind: "int",
    help: "wasm backend: data-parallel worker threads, 0 = one per idle core (cores minus those busy when the run starts, at most 8)",
    check: atLeast(0),
  },
  convolutions: {
    kind: "string",
    help: "wasm backend: convolutions on native onnxruntime kernels (native), XNNPACK (wasm), or native where it loads (auto)",
    check: oneOf(CONVOLUTIONS),
  },
  teacherEngine: {
    kind: "string",
    help: "what computes the teacher's soft targets: auto, onnx or tfjs",
    check: oneOf(TEACHER_ENGINES),
  },
  teacherCache: {
    kind: "boolean",
    help: "cache the teacher's logits per augmented view (exact: crop and flip make a finite set of views)",
  },
  checkpointMinutes: {
    kind: "number",
    help: "minutes between checkpoints inside an epoch, 0 = only at epoch ends",
    check: atLeast(0),
  },
  metricsEvery: {
    kind: "int",
    help: "optimizer steps between step records of metrics.jsonl (epoch records: every epoch)",
    check: atLeast(1),
  },
  inputSize: {
    kind: "string",
    nullable: true,
    placeholder: "N|WxH",
    help: "image files (folder, voc): the size images are resized to (default: the size most training images have)",
    check: size,
  },
  channels: {
    kind: "int",
    nullable: true,
    help: "image files: 1 (grey) or 3 (RGB) (default: grey only when every training image is)",
    check: (v: number) => (v === 1 || v === 3 ? null : "must be 1 or 3"),
  },
  skipUnreadable: {
    kind: "boolean",
    help: "image files: skip (and report) unreadable images; --no-skip-unreadable refuses the data set instead",
  },
  holdout: {
    kind: "number",
    help: "image files: fraction of train held out for each split the data set lacks (val/, test/)",
    check: fraction,
  },
  loss: {
    kind: "list",
    help: "distillation methods, one student sub-run each per architecture: kd, dkd, at; mlkd for multi-label data (docs/bring-your-own.md)",
  },
  lossOptions: {
    kind: "options",
    placeholder: "M.K=V,...",
    help: 'options of methods other than kd, e.g. dkd.beta=8,at.beta=1000 (a config file: {"dkd": {"beta": 8}})',
  },
  teacherLayout: {
    kind: "string",
    nullable: true,
    help: "ONNX teacher file: input layout NCHW or NHWC (default: its metadata, else its input shape)",
    check: oneOf(["NCHW", "NHWC"]),
  },
  teacherInputSize: {
    kind: "string",
    nullable: true,
    placeholder: "N|WxH",
    help: "ONNX teacher file: input size (default: its input shape, else the data's size)",
    check: size,
  },
  teacherMean: {
    kind: "numbers",
    nullable: true,
    help: "ONNX teacher file: per-channel mean it normalizes with (default: its metadata, else the data's own)",
  },
  teacherStd: {
    kind: "numbers",
    nullable: true,
    help: "ONNX teacher file: per-channel std",
    check: (v: number[]) => (v.every((x) => x > 0) ? null : "must be positive"),
  },
  teacherOutput: {
    kind: "string",
    nullable: true,
    help: 'ONNX teacher file: the output with its logits (default: "logits", else the one output with one value per class)',
  },
  teacherLabels: {
    kind: "string",
    nullable: true,
    placeholder: "FILE",
    help: "ONNX teacher file: its class names in the order of its outputs, a JSON list or one a line, matched to the data set's classes (default: its metadata's)",
  },
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function isField(key: string): key is keyof DistillConfig {
  return Object.hasOwn(FIELDS, key);
}

/** Parses a command-line string into the field's type. */
export function parseValue(key: keyof DistillConfig, text: string): unknown {
  const f = FIELDS[key];
  if (f.nullable && (text === "" || text === "default" || text === "null")) return null;
  switch (f.kind) {
    case "string":
      return text;
    case "int":
    case "number":
      return text.trim() === "" ? NaN : Number(text);
    case "boolean":
      if (["true", "1", "yes"].includes(text)) return true;
      if (["false", "0", "no"].includes(text)) return false;
      return text;
    case "list":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case "numbers":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
        .map(Number);
    case "options":
      return parseOptions(text);
  }
}

/** "dkd.beta=8,at.beta=1000" -> {dkd: {beta: 8}, at: {beta: 1000}}; the text itself when malformed (checkValue says why). */
function parseOptions(text: string): unknown {
  const out: Record<string, Record<string, number>> = {};
  for (const part of text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([\w-]+)\.(\w+)=(.+)$/.exec(part);
    if (!m) return text;
    const options = out[m[1]!] ?? {};
    options[m[2]!] = m[3]!.trim() === "" ? NaN : Number(m[3]);
    out[m[1]!] = options;
  }
  return out;
}

/** Checks one value's type and range; `where` says where it came from, for the message. */
export function checkValue(key: keyof DistillConfig, v: unknown, where: string): void {
  const f = FIELDS[key];
  const fail = (msg: string): never => {
    throw new ConfigError(`${where}: ${key} ${msg}, got ${JSON.stringify(v)}`);
  };
  if (v === null) {
    if (!f.nullable) fail("cannot be null");
    return;
  }
  switch (f.kind) {
    case "string":
      if (typeof v !== "string" || v.length === 0) fail("must be a non-empty string");
      break;
    case "int":
      if (typeof v !== "number" || !Number.isInteger(v)) fail("must be a whole number");
      break;
    case "number":
      if (typeof v !== "number" || !Number.isFinite(v)) fail("must be a number");
      break;
    case "boolean":
      if (typeof v !== "boolean") fail("must be true or false");
      break;
    case "list":
      if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) fail("must be a list of names");
      break;
    case "numbers":
      if (!Array.isArray(v) || !v.every((n) => typeof n === "number" && Number.isFinite(n)))
        fail("must be a list of numbers");
      break;
    case "options": {
      const isObject = (o: unknown): o is Record<string, unknown> =>
        typeof o === "object" && o !== null && !Array.isArray(o);
      if (
        !isObject(v) ||
        !Object.values(v).every(
          (o) => isObject(o) && Object.values(o).every((n) => typeof n === "number" && Number.isFinite(n)),
        )
      ) {
        fail(
          'must map methods to options with numeric values, such as dkd.beta=8 (a config file: {"dkd": {"beta": 8}})',
        );
      }
      break;
    }
  }
  const problem = f.check ? (f.check as (x: unknown) => string | null)(v) : null;
  if (problem) fail(problem);
}
