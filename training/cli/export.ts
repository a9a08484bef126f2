// npm run export -- <run dir | checkpoint file> [options]
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CALIBRATION_METHODS, type CalibrationMethod } from "../export/calibrate.ts";
import { EMULATED_CPUS, emulatedCpu } from "../export/cpu.ts";
import {
  type ExportOptions,
  type ExportResult,
  exportCheckpoint,
  exportInt8Variants,
  exportRun,
} from "../export/index.ts";
import { INT8_PORTABILITY } from "../export/int8.ts";
import { DEFAULT_WEIGHT_FORMAT, WEIGHT_FORMAT_NAMES, type WeightFormatName } from "../export/quantize.ts";
import { writeCurves } from "../train/curves.ts";
import { type GeneratedFiles, regenerateFromManifest } from "../../scripts/generated-from-manifest.ts";

const USAGE = `usage: npm run export -- <run dir | checkpoint.ndckpt | models dir> [options]

Exports trained models to ONNX in models/ and records them in models/manifest.json, after checking
each against the tfjs model (max |logit diff| <= 1e-4 and same top-1 on 512 test images).
A run directory exports the final checkpoint of every sub-run (teacher and students), and gets
its curves: metrics.csv and curves.svg (as npm run curves writes them).
Every student also gets an int8 variant, <name>-int8 (docs/int8.md). A models folder (one with a
manifest.json) gets int8 variants of its fp32 students, made from their ONNX files.

options:
  --models-dir DIR        where the models and manifest go (default: models/)
  --data DIR              where the data set is (default: its standard location)
  --parity-samples N      test images compared between tfjs and onnxruntime (default 512)
  --accuracy-samples N    test images the ONNX accuracy is measured on (default 0 = all)
  --opset N               ONNX opset, 13 or later (default 13)
  --backend NAME          tfjs backend of the reference: node-gpu, node, wasm, cpu (default: the
                          first CPU one that loads: node, wasm, cpu)
  --name NAME             manifest name (one checkpoint only; default: derived from the checkpoint)
  --allow-unfinished      export checkpoints of sub-runs that have not finished training
  --force                 replace models of the manifest that were trained on more images or for
                          more epochs than the new ones (refused without it)
  --readme FILE           README whose results table is regenerated (default: README.md when
                          writing to the default models/)
  --no-readme             leave the README alone
  --no-int8               no int8 variants of the students
  --default-student NAME  the student the Worker serves by default (default: the narrow-deep KD
                          student when exported, in the precision of the current default; else kept)
  --serve NAMES           students served besides the default, comma-separated ("" for none;
                          default: the manifest's list is kept)
  --calibration METHOD    how int8 activation ranges are calibrated: minmax (default) or percentile
  --calibration-percentile P
                          share of values the percentile method keeps in range (default 99.99)
  --calibration-samples N training images the ranges are measured on (default 1000)
  --int8-weights FORMAT   int8 weight format: ${WEIGHT_FORMAT_NAMES.join(", ")} (default ${DEFAULT_WEIGHT_FORMAT}; docs/int8.md)
  --int8-native-cpu MODEL measure the int8 variants' onnxruntime-node figure on an emulated CPU
                          (${Object.keys(EMULATED_CPUS).join(", ")}: no VNNI; needs qemu-user) instead of this one
  --int8-max-loss POINTS  top-1 points an int8 variant may lose against its twin in either runtime, and
                          the most the two runtimes may differ (default ${INT8_PORTABILITY.maxLossPoints})`;

function count(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a whole number >= 0, got "${value}"`);
  return n;
}

function calibrationSettings(
  method: string | undefined,
  percentile: string | undefined,
  samples: string | undefined,
): ExportOptions["calibration"] {
  if (method !== undefined && !(CALIBRATION_METHODS as readonly string[]).includes(method))
    throw new Error(`--calibration must be one of ${CALIBRATION_METHODS.join(", ")}, got "${method}"`);
  const p = percentile === undefined ? undefined : Number(percentile);
  if (p !== undefined && !(p > 50 && p <= 100))
    throw new Error(`--calibration-percentile must be a number in (50, 100], got "${percentile}"`);
  if (p !== undefined && method === "minmax")
    throw new Error("--calibration-percentile goes with --calibration percentile, not minmax");
  const n = count("--calibration-samples", samples);
  if (n === 0) throw new Error("--calibration-samples must be at least 1");
  return { method: method as CalibrationMethod | undefined, percentile: p, samples: n };
}

function int8Settings(
  weights: string | undefined,
  nativeCpu: string | undefined,
  maxLoss: string | undefined,
): ExportOptions["int8Settings"] {
  const points = maxLoss === undefined ? undefined : Number(maxLoss);
  if (points !== undefined && !(maxLoss!.trim() !== "" && points >= 0 && points <= 100))
    throw new Error(`--int8-max-loss must be a number of points in [0, 100], got "${maxLoss}"`);
  if (weights !== undefined && !(WEIGHT_FORMAT_NAMES as string[]).includes(weights))
    throw new Error(`--int8-weights must be one of ${WEIGHT_FORMAT_NAMES.join(", ")}, got "${weights}"`);
  if (nativeCpu !== undefined) emulatedCpu(nativeCpu); // names an unknown model or a missing qemu now, not after training
  return {
    weights: weights as WeightFormatName | undefined,
    ...(nativeCpu !== undefined ? { native: { emulate: nativeCpu } } : {}),
    ...(points !== undefined ? { portability: { maxLossPoints: points, maxGapPoints: points } } : {}),
  };
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "models-dir": { type: "string" },
      data: { type: "string" },
      "parity-samples": { type: "string" },
      "accuracy-samples": { type: "string" },
      opset: { type: "string" },
      backend: { type: "string" },
      name: { type: "string" },
      "allow-unfinished": { type: "boolean" },
      force: { type: "boolean" },
      readme: { type: "string" },
      "no-readme": { type: "boolean" },
      "no-int8": { type: "boolean" },
      "default-student": { type: "string" },
      serve: { type: "string" },
      calibration: { type: "string" },
      "calibration-percentile": { type: "string" },
      "calibration-samples": { type: "string" },
      "int8-weights": { type: "string" },
      "int8-native-cpu": { type: "string" },
      "int8-max-loss": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1)
    throw new Error(`expected one run directory or checkpoint file, got ${positionals.length}\n\n${USAGE}`);
  const target = positionals[0]!;
  const paritySamples = count("--parity-samples", values["parity-samples"]);
  if (paritySamples === 0) throw new Error("--parity-samples must be at least 1: every export is verified");
  const options: ExportOptions = {
    modelsDir: values["models-dir"],
    dataDir: values.data,
    paritySamples,
    accuracySamples: count("--accuracy-samples", values["accuracy-samples"]),
    opset: count("--opset", values.opset),
    backend: values.backend,
    name: values.name,
    allowUnfinished: values["allow-unfinished"],
    force: values.force,
    int8: !values["no-int8"],
    defaultStudent: values["default-student"],
    serve:
      values.serve === undefined
        ? undefined
        : values.serve
            .split(",")
            .map((n) => n.trim())
            .filter(Boolean),
    calibration: calibrationSettings(
      values.calibration,
      values["calibration-percentile"],
      values["calibration-samples"],
    ),
    int8Settings: int8Settings(values["int8-weights"], values["int8-native-cpu"], values["int8-max-loss"]),
  };
  const generated: GeneratedFiles = { readme: values["no-readme"] ? null : values.readme };
  let isDir: boolean;
  try {
    isDir = statSync(target).isDirectory();
  } catch {
    throw new Error(`${target}: no such run directory or checkpoint file`);
  }
  if (isDir && existsSync(join(target, "manifest.json")))
    regenerate(await exportInt8Variants(target, options), generated);
  else if (!isDir) regenerate(await exportCheckpoint(target, options), generated);
  else {
    regenerate(await exportRun(target, options), generated);
    try {
      const { csv, svg } = writeCurves(target);
      console.log(`curves: ${csv}, ${svg}`);
    } catch (err) {
      // The models are exported; curves are derived and drawn again by npm run curves.
      console.error(`curves not written: ${(err as Error).message}`);
    }
  }
}

function regenerate({ modelsDir, manifest }: ExportResult, files: GeneratedFiles): void {
  regenerateFromManifest(modelsDir, manifest, files);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`export: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
