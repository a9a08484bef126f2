// The contract between the two halves: training/ writes models/manifest.json, src/ reads it.
// Its only import is zod (which runs in the Worker and in Node alike): the manifest is checked by one
// zod schema, whose every message names the offending field ("manifest models[1].sha256: ...").
import * as z from "zod";

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

/** What each kind of field must be; zod's issue then carries the field's path. */
const nonEmpty = "must be a non-empty string";
const str = () => z.string({ error: nonEmpty }).min(1, { error: nonEmpty });
const num = () => z.number({ error: "must be a finite number" });
const obj = <S extends z.core.$ZodLooseShape>(shape: S) => z.object(shape, { error: "must be an object" });
const numArray = () => z.array(num(), { error: "must be an array of numbers" });
const nonEmptyArray = <T extends z.ZodType>(item: T) =>
  z.array(item, { error: "must be a non-empty array" }).min(1, { error: "must be a non-empty array" });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be ${values.map((v) => `"${v}"`).join(" or ")}` });
const sha256 = () => str().regex(/^[0-9a-f]{64}$/, { error: "must be 64 lowercase hex digits" });
const share = () =>
  num().min(0, { error: "must be a share between 0 and 1" }).max(1, { error: "must be a share between 0 and 1" });

const dimension = z
  .int({ error: "must be a positive integer or -1" })
  .refine((d) => d > 0 || d === -1, { error: "must be a positive integer or -1" });
const tensorShape = {
  name: str(),
  shape: z.array(dimension, { error: "must be an array of numbers" }),
  datatype: z.literal("FP32", { error: 'must be "FP32"' }),
};

const SeedAccuracySchema = obj({
  mean: num(),
  sd: num(),
  n: num(),
  bySeed: z.record(z.string(), num(), { error: "must be an object" }),
  shipped: num(),
});

const AccuracySchema = obj({
  top1: num(),
  dataset: str(),
  split: str(),
  samples: num(),
  mAP: num().optional(),
  seeds: SeedAccuracySchema.optional(),
});

const ExportCheckSchema = obj({
  maxAbsLogitDiff: num(),
  top1Agreement: num(),
  samples: num(),
  opset: num(),
  exportedAt: str(),
  checker: str().optional(),
});

const PortabilitySchema = obj({
  twinTop1: share(),
  runtimes: nonEmptyArray(obj({ runtime: str(), session: str(), top1: share() })),
  tolerance: obj({ maxLossPoints: num(), maxGapPoints: num() }),
});

const QuantizationSchema = obj({
  twin: str(),
  twinSha256: sha256(),
  format: str(),
  weights: str(),
  activations: str(),
  bias: str(),
  calibration: obj({ dataset: str(), split: str(), samples: num(), method: str(), percentile: num().optional() }),
  relativeLogitError: num(),
  tolerance: obj({ maxRelativeLogitError: num() }),
  runtime: str(),
  portability: PortabilitySchema.optional(),
});

export const ModelEntrySchema = obj({
  name: str().regex(MODEL_NAME_PATTERN, { error: "must be lowercase letters, digits, '.', '_' or '-'" }),
  version: str(),
  role: oneOf(["teacher", "student"]),
  architecture: str(),
  file: str().refine((f) => !f.includes("/") && !f.includes(".."), {
    error: "must be a plain file name inside models/",
  }),
  sha256: sha256(),
  bytes: num(),
  input: obj({ ...tensorShape, layout: oneOf(["NCHW", "NHWC"]) }).refine((i) => i.shape.length === 4, {
    error: "must have 4 dimensions",
    path: ["shape"],
  }),
  outputs: nonEmptyArray(obj(tensorShape)),
  normalization: obj({
    mean: numArray(),
    std: numArray().refine((s) => s.every((x) => x > 0), { error: "must be positive" }),
  }),
  labels: nonEmptyArray(str()),
  metrics: obj({ params: num(), macs: num(), accuracy: AccuracySchema.optional() }),
  export: ExportCheckSchema.optional(),
  training: z.record(z.string(), z.unknown(), { error: "must be an object" }).optional(),
  outputActivation: oneOf(["softmax", "sigmoid"]).optional(),
  quantization: QuantizationSchema.optional(),
}).superRefine((e, ctx) => {
  const channels = e.input.layout === "NCHW" ? e.input.shape[1]! : e.input.shape[3]!;
  if (e.normalization.mean.length !== channels || e.normalization.std.length !== channels) {
    ctx.addIssue({ code: "custom", path: ["normalization"], message: `needs ${channels} mean and std values` });
  }
}) satisfies z.ZodType<ModelEntry>;

export const ManifestSchema = z
  .object(
    {
      schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION, { error: `must be ${MANIFEST_SCHEMA_VERSION}` }),
      defaultStudent: str(),
      serve: z.array(str(), { error: "must be an array of student names" }).optional(),
      models: z.array(ModelEntrySchema, { error: "must be an array" }),
    },
    { error: "must be an object" },
  )
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    for (const e of m.models) {
      if (seen.has(e.name))
        ctx.addIssue({ code: "custom", path: ["models"], message: `duplicate model name "${e.name}"` });
      seen.add(e.name);
    }
    if (m.models.length > 0 && !m.models.some((e) => e.name === m.defaultStudent && e.role === "student")) {
      ctx.addIssue({
        code: "custom",
        path: ["defaultStudent"],
        message: `"${m.defaultStudent}" is not a student in models`,
      });
    }
    m.serve?.forEach((name, i) => {
      const e = m.models.find((x) => x.name === name);
      if (!e) ctx.addIssue({ code: "custom", path: ["serve", i], message: `"${name}" is not a model in models` });
      else if (e.role !== "student")
        ctx.addIssue({
          code: "custom",
          path: ["serve", i],
          message: `"${name}" is a ${e.role}; the Worker serves students only`,
        });
    });
  }) satisfies z.ZodType<Manifest>;

/** A field's path as the manifest's readers write it: models[1].input.shape; the whole: (root). */
function fieldPath(path: readonly PropertyKey[]): string {
  const out = path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i > 0 ? "." : ""}${String(p)}`)).join("");
  return out === "" ? "(root)" : out;
}

/** Validates parsed JSON as a manifest; throws ManifestError naming the offending field. */
export function parseManifest(json: unknown): Manifest {
  const parsed = ManifestSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new ManifestError(`manifest ${fieldPath(issue.path)}: ${issue.message}`);
}
