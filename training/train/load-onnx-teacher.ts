// Any ONNX image classifier as the teacher (`--teacher model.onnx`), e.g. one trained in PyTorch and
// exported there. What the project's own checkpoints say about a teacher comes here from flags, from
// the file's metadata_props (input_layout, normalization, labels: what this project's exporter
// writes), or from its input and output shapes, in that order:
//   layout  NCHW or NHWC: --teacher-layout, metadata, else the shape (which axis has 1 or 3 channels)
//   size    --teacher-input-size, else the input's fixed height and width, else the data's size
//   norm    --teacher-mean/--teacher-std, else metadata, else the data set's own (said in the log)
//   output  --teacher-output, else one named "logits", else the one output with a value per class
//   classes --teacher-labels, else metadata, else taken to be the data set's, in its order
//           (teacher-labels.ts pairs the names; outputs in another order are permuted to the data's)
// It is checked before training: onnxruntime-node loads it, it takes the data's channels, its input
// is not larger than MAX_TEACHER_PIXELS unless the flag says so, its labels (when it names them) are
// the data set's, and one batch gives [batch, classes]. The batch the
// student sees (NHWC, the data's normalization and size) is mapped to what it takes (pipeline.ts'
// withNormalization, then resize and layout here). An output of probabilities (rows of a softmax) is
// turned into log-probabilities, which are logits up to a constant per row: KD and DKD only see
// softmaxes of them, which the constant does not change.
import { readFileSync } from "node:fs";
import type * as ortTypes from "onnxruntime-node";
import { resize } from "../../models/image/resize.ts";
import type { DistillConfig } from "../config/schema.ts";
import type { Batch } from "../data/batches.ts";
import { parseSize } from "../data/index.ts";
import { nhwcToNchw } from "../data/layout.ts";
import { excerpt } from "../io/excerpt.ts";
import { readOnnxMetadata } from "../onnx/file.ts";
import type { Teacher } from "./teacher.ts";
import { classOrder, readTeacherLabels } from "./teacher-labels.ts";

type Layout = "NCHW" | "NHWC";
type Normalization = { mean: number[]; std: number[] };

/** What the flags say about an ONNX teacher; null: find it out from the file. */
export interface OnnxTeacherOptions {
  layout: Layout | null;
  size: { width: number; height: number } | null;
  mean: number[] | null;
  std: number[] | null;
  output: string | null;
  /** Its class names in the order of its outputs (--teacher-labels); absent: its metadata's. */
  labels?: string[];
}

/**
 * A teacher's input larger than this many pixels an image is refused unless --teacher-input-size
 * names its size: the teacher runs on a whole batch at once (8 images of a declared 8000x8000 take
 * 2 GB before its first layer), and a file from elsewhere should not decide that silently.
 */
export const MAX_TEACHER_PIXELS = 1024 * 1024;

export function onnxTeacherOptions(config: Partial<DistillConfig>): OnnxTeacherOptions {
  return {
    layout: config.teacherLayout === "NCHW" || config.teacherLayout === "NHWC" ? config.teacherLayout : null,
    size: config.teacherInputSize ? parseSize(config.teacherInputSize) : null,
    mean: config.teacherMean ?? null,
    std: config.teacherStd ?? null,
    output: config.teacherOutput ?? null,
    ...(config.teacherLabels ? { labels: readTeacherLabels(config.teacherLabels) } : {}),
  };
}

/** The data the teacher will see: the student's batches. */
export interface TeacherData {
  classes: string[];
  height: number;
  width: number;
  channels: number;
  normalization: Normalization;
}

/** How the file is fed and read, as found out. */
export interface OnnxTeacherSpec {
  input: string;
  layout: Layout;
  height: number;
  width: number;
  channels: number;
  normalization: Normalization;
  output: string;
  /** Rows of the output are probabilities (a softmax): logs are taken. */
  probabilities: boolean;
  /** order[i]: the output's column of the data set's class i; null: the same order. */
  order: number[] | null;
  /** Where each fact came from, for the log. */
  sources: string[];
}

export class TeacherFileError extends Error {
  override name = "TeacherFileError";
}

export interface OnnxTeacher extends Teacher {
  spec: OnnxTeacherSpec;
  /** The file's own outputs by name, columns as the file has them, for a batch in its normalization. */
  run(batch: Batch, outputs: string[]): Promise<Record<string, Float32Array>>;
}

function layoutFromShape(shape: readonly (number | string)[]): Layout | null {
  const ch = (d: number | string | undefined) => d === 1 || d === 3;
  if (ch(shape[1]) && !ch(shape[3])) return "NCHW";
  if (ch(shape[3]) && !ch(shape[1])) return "NHWC";
  return null;
}

function parseJson<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Opens and checks the teacher; `probe` is one normalized batch of the data (NHWC). */
export async function loadOnnxTeacher(
  path: string,
  options: OnnxTeacherOptions,
  data: TeacherData,
  probe: Batch,
): Promise<OnnxTeacher> {
  const fail = (why: string): never => {
    throw new TeacherFileError(`${path}: ${why}`);
  };
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    return fail(`cannot read the teacher (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const ort = await import("onnxruntime-node");
  let session: ortTypes.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: "all", logSeverityLevel: 3 });
  } catch (err) {
    return fail(`onnxruntime-node cannot load it as a model: ${firstLine(err)}`);
  }
  try {
    const spec = describe(session, readOnnxMetadata(bytes), options, data, fail);
    const run = runner(ort, session, spec, data);
    const out = await run(probe, [spec.output])
      .then((o) => o[spec.output]!)
      .catch((err: Error) => fail(`it does not run on a batch of the data: ${firstLine(err)}`));
    const classes = data.classes.length;
    if (out.dims.length !== 2 || out.dims[0] !== probe.size || out.dims[1] !== classes) {
      fail(
        `its output "${spec.output}" is [${out.dims.join(", ")}] for a batch of ${probe.size}; the data set has ${classes} classes, so one logit per class ([${probe.size}, ${classes}]) is needed`,
      );
    }
    spec.probabilities = isProbabilities(out.data, classes);
    if (spec.probabilities)
      spec.sources.push(`output "${spec.output}" holds probabilities: their logs are used as logits`);
    return {
      engine: "onnxruntime-node (CPU), ONNX file",
      source: path,
      spec,
      async logits(batch) {
        const { data } = (await run(batch, [spec.output]))[spec.output]!;
        const logits = spec.probabilities ? data.map((p) => Math.log(Math.max(p, 1e-30))) : data;
        return spec.order ? permuteColumns(logits, spec.order) : logits;
      },
      run: async (batch, outputs) =>
        Object.fromEntries(Object.entries(await run(batch, outputs)).map(([name, out]) => [name, out.data])),
      dispose: () => session.release(),
    };
  } catch (err) {
    await session.release();
    throw err;
  }
}

const firstLine = (err: unknown) => excerpt(String((err as Error)?.message ?? err).split("\n")[0]!);

/** Each row's values in `order`: out[r][i] = values[r][order[i]]. */
function permuteColumns(values: Float32Array, order: number[]): Float32Array {
  const k = order.length;
  return values.map((_, i) => values[i - (i % k) + order[i % k]!]!);
}

/** Rows of non-negative numbers that each sum to 1: a softmax's output. */
function isProbabilities(values: Float32Array, classes: number): boolean {
  for (let r = 0; r < values.length / classes; r++) {
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      const v = values[r * classes + k]!;
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-4) return false;
  }
  return true;
}

function describe(
  session: ortTypes.InferenceSession,
  metadata: Record<string, string>,
  options: OnnxTeacherOptions,
  data: TeacherData,
  fail: (why: string) => never,
): OnnxTeacherSpec {
  const sources: string[] = [];
  if (session.inputNames.length !== 1)
    fail(
      `it takes ${session.inputNames.length} inputs (${excerpt(session.inputNames.join(", "))}); a teacher takes one image tensor`,
    );
  const input = session.inputNames[0]!;
  const meta = session.inputMetadata[0];
  const shape = meta?.isTensor ? meta.shape : [];
  if (meta?.isTensor && meta.type !== "float32") fail(`its input "${input}" is ${meta.type}, not float32`);
  if (shape.length !== 0 && shape.length !== 4)
    fail(
      `its input "${input}" has shape [${excerpt(shape.join(", "))}]; an image classifier takes 4 dimensions (NCHW or NHWC)`,
    );

  const fromMeta = metadata.input_layout === "NCHW" || metadata.input_layout === "NHWC" ? metadata.input_layout : null;
  const layout = options.layout ?? fromMeta ?? layoutFromShape(shape);
  if (!layout)
    fail(`cannot tell whether input "${input}" [${shape.join(", ")}] is NCHW or NHWC; pass --teacher-layout`);
  sources.push(`layout ${layout} (${options.layout ? "flag" : fromMeta ? "metadata" : "input shape"})`);
  const [c, h, w] = layout === "NCHW" ? [shape[1], shape[2], shape[3]] : [shape[3], shape[1], shape[2]];
  if (typeof c === "number" && c !== data.channels)
    fail(`it takes ${c} channels; the data has ${data.channels} (set --channels ${c})`);

  const fixed = typeof h === "number" && typeof w === "number" ? { width: w, height: h } : null;
  if (options.size && fixed && (options.size.width !== fixed.width || options.size.height !== fixed.height))
    fail(
      `its input is fixed at ${fixed.width}x${fixed.height}, not --teacher-input-size ${options.size.width}x${options.size.height}`,
    );
  const size = options.size ?? fixed ?? { width: data.width, height: data.height };
  const sizeFrom = options.size ? "flag" : fixed ? "input shape" : "the data's size";
  if (!options.size && size.width * size.height > MAX_TEACHER_PIXELS) {
    const mb = (size.width * size.height * data.channels * 4) / 1e6;
    fail(
      `its input is ${size.width}x${size.height} (${sizeFrom}): ${(size.width * size.height).toLocaleString("en-US")} pixels, ${mb.toFixed(0)} MB an image as float32, and the teacher runs on whole batches; ` +
        `the cap is ${MAX_TEACHER_PIXELS.toLocaleString("en-US")} pixels (1024x1024). Pass --teacher-input-size ${size.width}x${size.height} to run it at that size anyway`,
    );
  }
  sources.push(`input "${input}" ${size.width}x${size.height} (${sizeFrom})`);

  const metaNorm = parseJson<Normalization>(metadata.normalization);
  let normalization: Normalization;
  if (options.mean || options.std) {
    if (!options.mean || !options.std) fail("--teacher-mean and --teacher-std go together");
    normalization = { mean: options.mean!, std: options.std! };
    sources.push("normalization from the flags");
  } else if (metaNorm && Array.isArray(metaNorm.mean) && Array.isArray(metaNorm.std)) {
    normalization = { mean: metaNorm.mean, std: metaNorm.std };
    sources.push("normalization from its metadata");
  } else {
    normalization = data.normalization;
    sources.push(
      "normalization: none given, so the data set's own (pass --teacher-mean and --teacher-std if it was trained with another)",
    );
  }
  if (normalization.mean.length !== data.channels || normalization.std.length !== data.channels)
    fail(
      `its normalization has ${normalization.mean.length} means and ${normalization.std.length} stds; the data has ${data.channels} channels`,
    );

  const order = classesOf(metadata, options, data, sources, fail);

  const classes = data.classes.length;
  const outputs = session.outputNames;
  const perClass = outputs.filter((_name, i) => {
    const m = session.outputMetadata[i];
    return m?.isTensor && m.shape.length === 2 && m.shape[1] === classes;
  });
  let output: string;
  if (options.output) {
    if (!outputs.includes(options.output))
      fail(`it has no output "${excerpt(options.output)}" (outputs: ${excerpt(outputs.join(", "))})`);
    output = options.output;
  } else if (outputs.includes("logits")) {
    output = "logits";
  } else if (outputs.length === 1 || perClass.length === 1) {
    output = perClass[0] ?? outputs[0]!;
  } else {
    return fail(
      `cannot tell which of its outputs (${excerpt(outputs.map((n, i) => `${n} [${(session.outputMetadata[i] as { shape?: unknown[] }).shape?.join(", ") ?? "?"}]`).join(", "))}) holds the logits; pass --teacher-output`,
    );
  }
  sources.push(`output "${output}"`);
  return {
    input,
    layout,
    ...size,
    channels: data.channels,
    normalization,
    output,
    probabilities: false,
    order,
    sources,
  };
}

/** Which output column is which class of the data set (teacher-labels.ts), from the flag or the metadata. */
function classesOf(
  metadata: Record<string, string>,
  options: OnnxTeacherOptions,
  data: TeacherData,
  sources: string[],
  fail: (why: string) => never,
): number[] | null {
  const fromMeta = parseJson<unknown>(metadata.labels);
  const metaLabels =
    Array.isArray(fromMeta) && fromMeta.every((l) => typeof l === "string") ? (fromMeta as string[]) : null;
  const labels = options.labels ?? metaLabels;
  const from = options.labels ? "--teacher-labels" : "its metadata";
  if (!labels) {
    const note = metadata.labels === undefined ? "" : " (its metadata's labels are not a list of names)";
    sources.push(
      `classes: it names none${note}, so its outputs are taken to be the data set's classes in order (pass --teacher-labels if not)`,
    );
    return null;
  }
  try {
    const { order, how } = classOrder(labels, data.classes);
    sources.push(`classes from ${from}: ${how}`);
    return order;
  } catch (err) {
    return fail(`${from}: ${(err as Error).message}`);
  }
}

/** The batch (NHWC at the data's size) resized when the teacher takes another size, in its layout. */
function feed(spec: OnnxTeacherSpec, from: TeacherData, batch: Batch): { data: Float32Array; dims: number[] } {
  const { height: h, width: w, channels: c } = spec;
  let images = batch.images;
  if (from.height !== h || from.width !== w) {
    // The Worker's antialiased resize, on normalized values: it is linear with weights summing to 1,
    // so resizing after the normalization equals normalizing after it.
    const [size, out] = [from.height * from.width * c, h * w * c];
    images = new Float32Array(batch.size * out);
    for (let i = 0; i < batch.size; i++)
      images.set(resize(batch.images.subarray(i * size, (i + 1) * size), from.width, from.height, c, w, h), i * out);
  }
  if (spec.layout === "NHWC") return { data: images, dims: [batch.size, h, w, c] };
  return {
    data: nhwcToNchw({ data: images, count: batch.size, height: h, width: w, channels: c }),
    dims: [batch.size, c, h, w],
  };
}

type Runner = (
  batch: Batch,
  outputs: string[],
) => Promise<Record<string, { data: Float32Array; dims: readonly number[] }>>;

function runner(
  ort: typeof ortTypes,
  session: ortTypes.InferenceSession,
  spec: OnnxTeacherSpec,
  from: TeacherData,
): Runner {
  return async (batch, outputs) => {
    const { data, dims } = feed(spec, from, batch);
    const results = await session.run({ [spec.input]: new ort.Tensor("float32", data, dims) }, outputs);
    return Object.fromEntries(
      outputs.map((name) => {
        const out = results[name]!;
        if (!(out.data instanceof Float32Array))
          throw new TeacherFileError(`the teacher's output "${name}" is ${out.type}, not float32`);
        return [name, { data: out.data, dims: out.dims }];
      }),
    );
  };
}
