// Writing verified models: their files and manifest entries as one transaction (store.ts), refused
// where they would replace better-trained models, then the Triton model repository beside them.
import { resolve } from "node:path";
import { downgrade, mergeEntries } from "./entry.ts";
import { type ExportOptions, type ExportResult, DEFAULT_MODELS_DIR } from "./options.ts";
import { updateModels } from "./store.ts";
import { writeTritonRepository } from "./triton.ts";
import type { Exported } from "./verify-models.ts";

/** An export that would replace better-trained models without --force. */
export class ExportRefusedError extends Error {
  override name = "ExportRefusedError";
}

/** Writes verified models and their manifest entries as one transaction. */
export function writeExport(exported: Exported[], options: ExportOptions): ExportResult {
  const log = options.log ?? console.log;
  const modelsDir = resolve(options.modelsDir ?? DEFAULT_MODELS_DIR);
  const entries = exported.map((e) => e.entry);
  const files = exported.map((e) => e.file);
  const manifest = updateModels(modelsDir, files, (current) => {
    const losses = options.force
      ? []
      : entries.flatMap((e) => {
          const old = current.models.find((m) => m.name === e.name);
          const why = old ? downgrade(old, e) : null;
          return why ? [why] : [];
        });
    if (losses.length)
      throw new ExportRefusedError(
        `export to ${modelsDir} refused: ${losses.join("; ")} (pass --force to replace them, or --models-dir to export elsewhere)`,
      );
    return mergeEntries(current, entries, options);
  });
  log(
    `export: wrote ${files.map((f) => f.file).join(", ")} and manifest.json to ${modelsDir} (default student: ${manifest.defaultStudent})`,
  );
  for (const dir of writeTritonRepository(modelsDir, manifest))
    log(`export: Triton model repository: ${dir} (docs/teacher.md)`);
  return { modelsDir, entries, manifest };
}
