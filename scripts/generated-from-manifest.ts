// What is generated from a models folder's manifest.json once an export has written it: the Worker's
// model bundle (bundle-models.ts), the README's results table (results-table.ts) and the accuracy
// plot (accuracy-plot.ts). The export commands (training/cli/) call this after the export library
// has written and verified the models; the library itself writes only models and their manifest.
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Manifest } from "../models/schema.ts";
import { DEFAULT_MODELS_DIR } from "../training/export/index.ts";
import { PLOT_FILE, writeAccuracyPlot } from "./accuracy-plot.ts";
import { bundleModels } from "./bundle-models.ts";
import { updateResultsTable } from "./results-table.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface GeneratedFiles {
  /** README whose results table is regenerated; default: this repository's README when modelsDir is the default, else none. */
  readme?: string | null;
  /** SVG of accuracy against MACs that is regenerated; default: this repository's docs/accuracy-vs-macs.svg when modelsDir is the default, else none. */
  plot?: string | null;
}

/** Regenerates the bundle of `modelsDir`, and the README table and plot where `files` (or the defaults) name them. */
export function regenerateFromManifest(
  modelsDir: string,
  manifest: Manifest,
  files: GeneratedFiles = {},
  log: (line: string) => void = console.log,
): void {
  const isDefault = resolve(modelsDir) === DEFAULT_MODELS_DIR;
  const readme = files.readme !== undefined ? files.readme : isDefault ? join(REPO, "README.md") : null;
  const plot = files.plot !== undefined ? files.plot : isDefault ? join(REPO, PLOT_FILE) : null;
  bundleModels(modelsDir);
  if (readme) {
    updateResultsTable(readme, manifest);
    log(`export: results table in ${readme} regenerated`);
  }
  if (plot) {
    writeAccuracyPlot(plot, manifest);
    log(`export: ${plot} regenerated`);
  }
}
