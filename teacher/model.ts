// The teacher host's one model: its entry in models/manifest.json (role "teacher", or the one named),
// served by the same ModelStore as the Worker, which checks the file's size and sha256 before
// opening it, and runs through a batcher (batching.ts). Loading happens at start, so a bad file stops
// the host instead of failing requests.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type ModelEntry, parseManifest } from "../models/schema.ts";
import { type BatchingOptions, BatchingStore } from "./batching.ts";
import { type NodeEngine, type ProviderChoice, nodeEngine } from "./engine.ts";

export interface LoadOptions {
  /** Path of models/manifest.json; model files are read from the same folder. */
  manifestPath: string;
  /** Model to serve; default: the manifest's only teacher. */
  name?: string;
  provider?: ProviderChoice;
  /** Dynamic batching; default batches of up to 32 images gathered over 2 ms. */
  batching?: BatchingOptions;
}

export interface LoadedTeacher {
  entry: ModelEntry;
  store: BatchingStore;
  engine: NodeEngine;
}

export class TeacherLoadError extends Error {
  override name = "TeacherLoadError";
}

function pickEntry(models: ModelEntry[], manifestPath: string, name: string | undefined): ModelEntry {
  if (name !== undefined) {
    const entry = models.find((m) => m.name === name);
    if (!entry)
      throw new TeacherLoadError(
        `model "${name}" is not in ${manifestPath} (it has: ${models.map((m) => m.name).join(", ") || "none"})`,
      );
    return entry;
  }
  const teachers = models.filter((m) => m.role === "teacher");
  if (teachers.length !== 1) {
    throw new TeacherLoadError(
      `${manifestPath} has ${teachers.length} models with role "teacher"; name the one to serve with --model`,
    );
  }
  return teachers[0]!;
}

export async function loadTeacher(options: LoadOptions): Promise<LoadedTeacher> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(options.manifestPath, "utf8"));
  } catch (err) {
    throw new TeacherLoadError(`cannot read ${options.manifestPath}: ${(err as Error).message}`);
  }
  const manifest = parseManifest(json);
  const entry = pickEntry(manifest.models, options.manifestPath, options.name);
  const path = join(dirname(options.manifestPath), entry.file);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new TeacherLoadError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const engine = nodeEngine(options.provider);
  // The host serves exactly this model, under the manifest's name for it.
  const store = new BatchingStore(
    { ...manifest, defaultStudent: entry.name, models: [entry] },
    { [entry.file]: bytes },
    engine,
    options.batching,
  );
  try {
    await store.session(entry);
  } catch (err) {
    throw new TeacherLoadError((err as Error).message);
  }
  return { entry, store, engine };
}
