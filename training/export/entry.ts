// What the manifest says about one exported model, and how new entries merge into a manifest.
//
// Names: the teacher is "teacher"; a student distilled with "kd" is named by its architecture
// ("narrow-deep", "wide", "unmodified"); a student trained on labels alone (loss "ce" or "bce", or "kd"
// with alpha 0) is "<architecture>-baseline"; any other distillation loss gives "<architecture>-<loss>".
// Version: the id of the run that trained the model (its run directory's name).
import { createHash } from "node:crypto";
import {
  type ExportCheck,
  type Manifest,
  type ModelEntry,
  type SeedAccuracy,
  ManifestError,
} from "../../models/schema.ts";
import { countMacs, countParams } from "../model/graph.ts";
import type { Checkpoint } from "../train/checkpoint.ts";
import { isBaseline } from "../train/report.ts";
import { INPUT_NAME, OUTPUT_NAMES } from "../model/to-onnx.ts";

/** The student /v1/classify uses by default: the paper's proposal. */
export const DEFAULT_STUDENT = "narrow-deep";

export function manifestName(meta: Checkpoint["meta"]): string {
  if (meta.role === "teacher") return "teacher";
  if (isBaseline(meta)) return `${meta.architecture}-baseline`;
  if (meta.loss.name === "kd") return meta.architecture;
  return `${meta.architecture}-${meta.loss.name}`;
}

export interface EntryFacts {
  name: string;
  version: string;
  onnx: Uint8Array;
  check: ExportCheck;
  /** Top-1 of the exported model on the test split, and how many images that was (multi-label: and the mAP). */
  accuracy: { top1: number; samples: number; mAP?: number };
  /** Every seed's test accuracy, when the run trained this model with several. */
  seeds?: SeedAccuracy;
  /** The run, the checkpoint exported and, for distilled students, the teacher's checkpoint and engine. */
  run: { id: string; preset?: string; checkpoint: string; teacher?: { checkpoint: string; engine: string } };
}

export function modelEntry(ckpt: Checkpoint, facts: EntryFacts): ModelEntry {
  const { graph, meta } = ckpt;
  const { channels, height, width } = graph.input;
  const last = meta.history.at(-1);
  return {
    name: facts.name,
    version: facts.version,
    role: meta.role,
    architecture: meta.architecture,
    file: `${facts.name}.onnx`,
    sha256: createHash("sha256").update(facts.onnx).digest("hex"),
    bytes: facts.onnx.length,
    input: { name: INPUT_NAME, shape: [-1, channels, height, width], datatype: "FP32", layout: "NCHW" },
    outputs: OUTPUT_NAMES.map((name) => ({ name, shape: [-1, graph.numClasses], datatype: "FP32" as const })),
    ...(meta.dataset.multiLabel ? { outputActivation: "sigmoid" as const } : {}),
    normalization: meta.dataset.normalization,
    labels: meta.dataset.labels,
    metrics: {
      params: countParams(graph),
      macs: countMacs(graph),
      accuracy: {
        top1: facts.accuracy.top1,
        dataset: meta.dataset.name,
        split: "test",
        samples: facts.accuracy.samples,
        ...(facts.seeds ? { seeds: facts.seeds } : {}),
        ...(facts.accuracy.mAP !== undefined ? { mAP: facts.accuracy.mAP } : {}),
      },
    },
    export: facts.check,
    training: {
      run: facts.run.id,
      ...(facts.run.preset !== undefined ? { preset: facts.run.preset } : {}),
      checkpoint: facts.run.checkpoint,
      subRun: meta.name,
      widthScale: meta.widthScale,
      loss: meta.loss,
      ...(facts.run.teacher ? { teacher: facts.run.teacher } : {}),
      epochs: meta.epoch,
      steps: meta.step,
      trainSamples: meta.dataset.trainSamples,
      finished: meta.done,
      /** Test accuracy the training loop measured after its last epoch (tfjs, on its test subset). */
      lastEpochTestAccuracy: last?.testAccuracy,
      engine: "tfjs",
      backend: meta.engine.backend,
      device: meta.engine.device,
      wallSeconds: meta.wallSeconds,
      config: meta.config,
    },
  };
}

/** How much training an entry records: images seen per epoch and epochs (0 when unknown). */
function trainingAmount(e: ModelEntry): { samples: number; epochs: number } {
  const t = e.training ?? {};
  return { samples: Number(t.trainSamples) || 0, epochs: Number(t.epochs) || 0 };
}

/**
 * Why replacing `current` by `next` would lose a better-trained model, or null when it would not:
 * a model trained on more images or for more epochs is replaced only on purpose (--force). This
 * keeps a quick demo run from overwriting the shipped models.
 */
export function downgrade(current: ModelEntry, next: ModelEntry): string | null {
  const [a, b] = [trainingAmount(current), trainingAmount(next)];
  if (a.samples > b.samples)
    return `${current.name} in the manifest was trained on ${a.samples} images, the new one on ${b.samples}`;
  if (a.epochs > b.epochs)
    return `${current.name} in the manifest was trained for ${a.epochs} epochs, the new one for ${b.epochs}`;
  return null;
}

/** What a deployment serves, when chosen at export rather than kept from the manifest. */
export interface ServingChoice {
  /** The default student (`--default-student`). */
  defaultStudent?: string;
  /** Students served besides it (`--serve`); the schema checks the names. */
  serve?: string[];
}

/**
 * The manifest with `entries` added, replacing models of the same name. The default student is the
 * one chosen, else the narrow-deep KD student when it is among them (its int8 variant when the current
 * default is an int8 variant and one is among them: a deployment keeps its precision), else stays as
 * it was when still valid, else is the first student. The served list is the one chosen, else stays.
 */
export function mergeEntries(current: Manifest, entries: ModelEntry[], choice: ServingChoice = {}): Manifest {
  const names = new Set(entries.map((e) => e.name));
  if (names.size !== entries.length)
    throw new ManifestError(`two exported models have the same name (${entries.map((e) => e.name).join(", ")})`);
  const models = [...current.models.filter((m) => !names.has(m.name)), ...entries];
  const students = models.filter((m) => m.role === "student");
  if (students.length === 0)
    throw new ManifestError(
      "the manifest needs at least one student model: export a student along with (or before) the teacher",
    );
  if (choice.defaultStudent !== undefined && !students.some((m) => m.name === choice.defaultStudent)) {
    throw new ManifestError(
      `--default-student ${choice.defaultStudent}: no such student (students: ${students.map((m) => m.name).join(", ")})`,
    );
  }
  const keep = students.some((m) => m.name === current.defaultStudent) ? current.defaultStudent : students[0]!.name;
  const int8 = current.models.find((m) => m.name === current.defaultStudent)?.quantization !== undefined;
  const int8Twin = int8
    ? entries.find((e) => e.role === "student" && e.quantization?.twin === DEFAULT_STUDENT)?.name
    : undefined;
  const exported = entries.some((e) => e.name === DEFAULT_STUDENT && e.role === "student");
  const defaultStudent = choice.defaultStudent ?? (exported ? (int8Twin ?? DEFAULT_STUDENT) : keep);
  const serve = choice.serve ?? current.serve;
  // Stable order for readers: teacher first, then students by name.
  models.sort((a, b) => (a.role === b.role ? a.name.localeCompare(b.name) : a.role === "teacher" ? -1 : 1));
  return { schemaVersion: current.schemaVersion, defaultStudent, ...(serve ? { serve } : {}), models };
}
