// Trained checkpoints -> verified ONNX models in models/ with their manifest entries, in three steps:
// discover the checkpoints (discover.ts), encode and verify every one (verify-models.ts), and only
// when every model passes write the files and the manifest as one transaction (write.ts). What is
// generated from the manifest (the Worker's bundle, the README's table, the plot) is the commands'
// to redo (scripts/generated-from-manifest.ts).
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Dataset } from "../data/dataset.ts";
import { DataError } from "../data/dataset.ts";
import { loadDataset } from "../data/index.ts";
import { checkpointSource, runSources } from "./discover.ts";
import { int8Variant } from "./int8.ts";
import { type ExportOptions, type ExportResult, DEFAULT_MODELS_DIR } from "./options.ts";
import { readManifest } from "./store.ts";
import { type Exported, normalizedImages, verifyModels } from "./verify-models.ts";
import { writeExport } from "./write.ts";

export { UnsupportedLayerError } from "../model/to-onnx.ts";
export { type ExportOptions, type ExportResult, DEFAULT_MODELS_DIR } from "./options.ts";
export { ExportVerificationError } from "./verify.ts";
export { ExportRefusedError } from "./write.ts";

/** Exports one checkpoint file. */
export async function exportCheckpoint(path: string, options: ExportOptions = {}): Promise<ExportResult> {
  const source = checkpointSource(path, options);
  return writeExport(await verifyModels([source], options), options);
}

/** Exports the final checkpoint of every sub-run (teacher and students) in a run directory. */
export async function exportRun(runDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const { sources, teacherFile } = runSources(runDir, options);
  return writeExport(await verifyModels(sources, options, teacherFile), options);
}

/**
 * The int8 variants of the fp32 students of a models folder, made from their ONNX files (no
 * checkpoints needed) and measured on the data set their entries name. Written with their twins to
 * options.modelsDir (the twins are copied when that is another folder).
 */
export async function exportInt8Variants(sourceDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  if (options.int8 === false)
    throw new Error("int8 variants of a models folder were asked for with int8 off: nothing to export");
  if (options.name !== undefined) throw new Error("a model name can only be given when exporting one checkpoint");
  const log = options.log ?? console.log;
  const twins = readManifest(sourceDir).models.filter(
    (m) => m.role === "student" && !m.quantization && m.outputActivation !== "sigmoid",
  );
  if (twins.length === 0)
    throw new Error(`${sourceDir}: no fp32 single-label students in its manifest.json to quantize`);
  const copyTwins = resolve(sourceDir) !== resolve(options.modelsDir ?? DEFAULT_MODELS_DIR);
  const datasets = new Map<string, Dataset>();
  const exported: Exported[] = [];
  for (const twin of twins) {
    const path = join(sourceDir, twin.file);
    if (!existsSync(path)) throw new Error(`${twin.name}: its file ${path} does not exist`);
    const onnx = new Uint8Array(readFileSync(path));
    if (createHash("sha256").update(onnx).digest("hex") !== twin.sha256)
      throw new Error(`${path} does not match its manifest entry's sha256`);
    const name = twin.metrics.accuracy?.dataset;
    if (!name)
      throw new Error(`${twin.name}: its manifest entry names no data set (metrics.accuracy.dataset) to calibrate on`);
    const dataset = datasets.get(name) ?? loadDataset(name, options.dataDir);
    datasets.set(name, dataset);
    const [, channels, height, width] = twin.input.shape;
    const { test } = dataset;
    if (test.channels !== channels || test.height !== height || test.width !== width)
      throw new DataError(
        `${twin.name} takes ${height}x${width}x${channels} images, ${name} has ${test.height}x${test.width}x${test.channels}`,
      );
    const { images, labels } = normalizedImages(test, twin.normalization, options.accuracySamples || test.count);
    if (copyTwins) exported.push({ entry: twin, file: { file: twin.file, bytes: onnx } });
    exported.push(
      await int8Variant({
        twin,
        onnx,
        train: dataset.train,
        test: images,
        labels,
        calibration: options.calibration,
        settings: options.int8Settings,
        log,
      }),
    );
  }
  return writeExport(exported, options);
}
