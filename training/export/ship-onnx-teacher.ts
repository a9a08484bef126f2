// A teacher given as an ONNX file (--teacher model.onnx) into the manifest as the run's teacher, so
// that the teacher host serves it and the A/B report compares the students against it.
//
// The file keeps its graph, input name, layout and size; it gains the two outputs the teacher host
// and the Worker read ("logits", and "probabilities" by softmax, or sigmoid for multi-label data;
// onnx/file.ts), unless it has them already (every file this project exports does), with its
// classes put in the data set's order, and metadata_props saying its layout, normalization and
// labels. Nothing is accepted unverified: onnx.checker, the logits of the rewritten file equal to
// the original's (mapped to the data set's classes) on the test images, both in onnxruntime-node,
// its probabilities equal to the softmax (sigmoid) of its logits, and its accuracy measured on the
// file itself.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ModelEntry } from "../../models/schema.ts";
import type { DistillConfig } from "../config/schema.ts";
import { type Batch, makeBatch, normalizationTable } from "../data/batches.ts";
import type { ImageSet } from "../data/dataset.ts";
import { Rng } from "../data/rng.ts";
import { meanAveragePrecision, precisionAtOne } from "../train/map.ts";
import { onnxFacts, withManifestOutputs } from "../onnx/file.ts";
import { type OnnxTeacher, type TeacherData, loadOnnxTeacher, onnxTeacherOptions } from "../train/load-onnx-teacher.ts";
import { runOnnxChecker } from "./checker.ts";
import { OUTPUT_NAMES } from "../model/to-onnx.ts";
import type { ModelFile } from "./store.ts";
import { ExportVerificationError, PARITY_TOLERANCE, argmax } from "./verify.ts";

/** Teachers that answer probabilities get log(p) as logits; compared above this floor (log 1e-30). */
const LOG_FLOOR = Math.log(1e-30);
/**
 * Largest |probability - activation(logit)| accepted. A teacher's own softmax rows may sum to 1 only
 * within 1e-4 (onnx-teacher.ts), so its probabilities kept as they are differ from the softmax of
 * their logs by as much; a wrong output differs by far more.
 */
const PROBABILITY_TOLERANCE = 1e-4;

export interface OnnxTeacherExport {
  /** The teacher file and the run that distilled from it. */
  path: string;
  config: Partial<DistillConfig>;
  run: { id: string; preset?: string };
  /** The run's data set: its test split, classes and normalization (the students'). */
  test: ImageSet;
  classes: string[];
  normalization: { mean: number[]; std: number[] };
  /** Test images the accuracy is measured on (0: all). */
  accuracySamples?: number;
  /** The path as the manifest records it. */
  recordedPath: string;
  log: (line: string) => void;
}

function batches(set: ImageSet, normalization: { mean: number[]; std: number[] }, count: number, size = 128): Batch[] {
  const table = normalizationTable(normalization);
  const out: Batch[] = [];
  for (let start = 0; start < count; start += size) {
    const n = Math.min(size, count - start);
    out.push(
      makeBatch(
        set,
        Array.from({ length: n }, (_, i) => start + i),
        table,
        null,
        new Rng(0),
      ),
    );
  }
  return out;
}

/** The largest |p - activation(z)| over rows of logits z and probabilities p. */
function activationError(
  logits: Float32Array,
  probabilities: Float32Array,
  classes: number,
  activation: "softmax" | "sigmoid",
): number {
  let worst = 0;
  for (let row = 0; row < logits.length; row += classes) {
    const z = logits.subarray(row, row + classes);
    const max = Math.max(...z);
    const sum = z.reduce((s, v) => s + Math.exp(v - max), 0);
    z.forEach((v, k) => {
      const want = activation === "sigmoid" ? 1 / (1 + Math.exp(-v)) : Math.exp(v - max) / sum;
      worst = Math.max(worst, Math.abs(probabilities[row + k]! - want));
    });
  }
  return worst;
}

export async function exportOnnxTeacher(o: OnnxTeacherExport): Promise<{ entry: ModelEntry; file: ModelFile }> {
  const what = `teacher (${o.path})`;
  const multiLabel = o.test.targets !== undefined;
  const activation = multiLabel ? "sigmoid" : "softmax";
  const classes = o.classes.length;
  const data: TeacherData = {
    classes: o.classes,
    height: o.test.height,
    width: o.test.width,
    channels: o.test.channels,
    normalization: o.normalization,
  };
  const count = Math.min(o.accuracySamples || o.test.count, o.test.count);
  const original = await loadOnnxTeacher(
    o.path,
    onnxTeacherOptions(o.config),
    data,
    batches(o.test, o.normalization, Math.min(count, 16))[0]!,
  );
  const { spec } = original;
  // In the teacher's own normalization: both files are fed these batches as they are.
  const test = batches(o.test, spec.normalization, count);
  const temp = mkdtempSync(join(tmpdir(), "nd-teacher-export-"));
  let rewritten: OnnxTeacher | undefined;
  try {
    let bytes: Uint8Array;
    try {
      bytes = withManifestOutputs(new Uint8Array(readFileSync(o.path)), {
        output: spec.output,
        classes,
        activation,
        fromProbabilities: spec.probabilities,
        order: spec.order,
        metadata: {
          input_layout: spec.layout,
          normalization: JSON.stringify(spec.normalization),
          labels: JSON.stringify(o.classes),
          run: o.run.id,
          ...(multiLabel ? { output_activation: "sigmoid" } : {}),
        },
      });
    } catch (err) {
      throw new ExportVerificationError(
        `${what}: cannot give it the outputs logits and probabilities: ${(err as Error).message}`,
      );
    }
    const checker = runOnnxChecker(bytes);
    if (checker.status === "failed")
      throw new ExportVerificationError(`${what}: onnx.checker rejects the rewritten file: ${checker.detail}`);
    writeFileSync(join(temp, "teacher.onnx"), bytes);
    rewritten = await loadOnnxTeacher(
      join(temp, "teacher.onnx"),
      {
        layout: spec.layout,
        size: { width: spec.width, height: spec.height },
        mean: spec.normalization.mean,
        std: spec.normalization.std,
        output: OUTPUT_NAMES[0],
      },
      data,
      test[0]!,
    );
    if (rewritten.spec.order !== null)
      throw new ExportVerificationError(`${what}: the rewritten file's labels are not the data set's classes in order`);

    // The same images through the original (its classes mapped in JS) and the rewritten file (mapped
    // in the graph): the logits must not change, and the probabilities must be their activation.
    const logits = new Float32Array(count * classes);
    let worst = 0;
    let worstProbability = 0;
    let agree = 0;
    let at = 0;
    for (const batch of test) {
      const x = await original.logits(batch);
      const { logits: y, probabilities: p } = await rewritten.run(batch, [...OUTPUT_NAMES]);
      for (let i = 0; i < x.length; i++)
        worst = Math.max(worst, Math.abs(Math.max(x[i]!, LOG_FLOOR) - Math.max(y![i]!, LOG_FLOOR)));
      for (let n = 0; n < batch.size; n++) if (argmax(x, classes, n) === argmax(y!, classes, n)) agree++;
      worstProbability = Math.max(worstProbability, activationError(y!, p!, classes, activation));
      logits.set(y!, at * classes);
      at += batch.size;
    }
    if (!(worst <= PARITY_TOLERANCE) || agree !== count)
      throw new ExportVerificationError(
        `${what}: the rewritten file's logits differ from the original's (max |diff| ${worst.toExponential(2)}, top-1 agrees on ${agree} of ${count})`,
      );
    if (!(worstProbability <= PROBABILITY_TOLERANCE))
      throw new ExportVerificationError(
        `${what}: the rewritten file's probabilities are not the ${activation} of its logits (max |diff| ${worstProbability.toExponential(2)} over ${count} images)`,
      );
    const targets = o.test.targets?.subarray(0, count * classes);
    let right = 0;
    for (let n = 0; n < count; n++) if (argmax(logits, classes, n) === o.test.labels[n]) right++;
    const accuracy = targets
      ? { top1: precisionAtOne(logits, targets, classes), mAP: meanAveragePrecision(logits, targets, classes).map }
      : { top1: count ? right / count : 0 };
    const facts = onnxFacts(bytes);
    const { height: h, width: w, channels: c } = spec;
    const entry: ModelEntry = {
      name: "teacher",
      version: o.run.id,
      role: "teacher",
      architecture: "onnx",
      file: "teacher.onnx",
      sha256: createHash("sha256").update(bytes).digest("hex"),
      bytes: bytes.length,
      input: {
        name: spec.input,
        shape: spec.layout === "NCHW" ? [-1, c, h, w] : [-1, h, w, c],
        datatype: "FP32",
        layout: spec.layout,
      },
      outputs: OUTPUT_NAMES.map((name) => ({ name, shape: [-1, classes], datatype: "FP32" as const })),
      ...(multiLabel ? { outputActivation: "sigmoid" as const } : {}),
      normalization: spec.normalization,
      labels: o.classes,
      // MACs are not counted for a graph this project did not build: 0 says unknown.
      metrics: {
        params: facts.params,
        macs: 0,
        accuracy: { ...accuracy, dataset: o.config.dataset ?? "unknown", split: "test", samples: count },
      },
      export: {
        maxAbsLogitDiff: worst,
        top1Agreement: agree / Math.max(1, count),
        samples: count,
        opset: facts.opset,
        exportedAt: new Date().toISOString(),
        ...(checker.status === "passed" ? { checker: `passed (${checker.detail})` } : {}),
      },
      training: {
        run: o.run.id,
        ...(o.run.preset !== undefined ? { preset: o.run.preset } : {}),
        source: o.recordedPath,
        engine: "an ONNX file made elsewhere",
        howRead: spec.sources,
        macs: "not counted",
      },
    };
    const mapped = spec.order ? ", its classes permuted to the data set's order" : "";
    o.log(
      `export: teacher: ${o.path} with outputs logits and probabilities${mapped}, max |logit diff| ${worst.toExponential(2)} from the original over ${count} images, test ${multiLabel ? "precision at 1" : "top-1"} ${(100 * accuracy.top1).toFixed(2)}%`,
    );
    return { entry, file: { file: entry.file, bytes } };
  } finally {
    await original.dispose();
    await rewritten?.dispose();
    rmSync(temp, { recursive: true, force: true });
  }
}
