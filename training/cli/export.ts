// npm run export -- <run dir | checkpoint file> [options]
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { type ExportOptions, exportCheckpoint, exportRun } from "../export/index.ts";

const USAGE = `usage: npm run export -- <run dir | checkpoint.ndckpt> [options]

Exports trained models to ONNX in models/ and records them in models/manifest.json, after checking
each against the tfjs model (max |logit diff| <= 1e-4 and same top-1 on 512 test images).
A run directory exports the final checkpoint of every sub-run (teacher and students).

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
  --no-readme             leave the README alone`;

function count(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a whole number >= 0, got "${value}"`);
  return n;
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
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) throw new Error(`expected one run directory or checkpoint file, got ${positionals.length}\n\n${USAGE}`);
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
    readme: values["no-readme"] ? null : values.readme,
  };
  let isDir: boolean;
  try {
    isDir = statSync(target).isDirectory();
  } catch {
    throw new Error(`${target}: no such run directory or checkpoint file`);
  }
  await (isDir ? exportRun(target, options) : exportCheckpoint(target, options));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`export: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
