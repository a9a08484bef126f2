// What an export is asked to do and what it answers, shared by its three steps (discover.ts,
// verify-models.ts, write.ts), and where the repository's models folder is.
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest, ModelEntry } from "../../models/schema.ts";
import type { CalibrationSettings, Int8Settings } from "./int8.ts";
import type { ServingChoice } from "./entry.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const DEFAULT_MODELS_DIR = join(REPO, "models");

export interface ExportOptions extends ServingChoice {
  /** Where models and manifest.json go; default: this repository's models/. */
  modelsDir?: string;
  /** Where the run's data set is read from; default: the data set's standard location. */
  dataDir?: string;
  /** Test images compared between tfjs and onnxruntime (default 512). */
  paritySamples?: number;
  /** Test images the exported model's accuracy is measured on; 0 (default) = the whole test split. */
  accuracySamples?: number;
  opset?: number;
  /** tfjs backend of the reference forward pass; default: the one running, else node, wasm or cpu. */
  backend?: string;
  /** Manifest name instead of the one derived from the checkpoint (exportCheckpoint only). */
  name?: string;
  /** Export checkpoints of sub-runs that have not done all their epochs. */
  allowUnfinished?: boolean;
  /** Replace models in the manifest trained on more images or for more epochs than the new ones. */
  force?: boolean;
  /** Also write an int8 (QDQ) variant of every student, "<name>-int8" (default true). */
  int8?: boolean;
  /** How the int8 variants' activation ranges are calibrated on training images. */
  calibration?: CalibrationSettings;
  /** How the int8 variants' weights are stored and where their native figure is measured. */
  int8Settings?: Int8Settings;
  log?: (line: string) => void;
}

export interface ExportResult {
  modelsDir: string;
  /** The entries written, one per exported model. */
  entries: ModelEntry[];
  manifest: Manifest;
}

/** A path relative to the repository when inside it (manifests travel with the repository), else absolute. */
export function repoPath(path: string): string {
  const rel = relative(REPO, resolve(path));
  return rel.startsWith("..") ? resolve(path) : rel;
}
