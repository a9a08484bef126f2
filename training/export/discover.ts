// Discovering what to export: the checkpoints of a run directory (the latest of each sub-run, one
// seed of each model trained with several), or one checkpoint file, with what their run says about
// them. Unfinished sub-runs are refused here, before anything is encoded.
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { type SeedAccuracy, MODEL_NAME_PATTERN } from "../../models/schema.ts";
import type { DistillConfig } from "../config/schema.ts";
import { type Checkpoint, CHECKPOINT_EXTENSION, loadCheckpoint } from "../train/checkpoint.ts";
import { isOnnxFile } from "../train/open-teacher.ts";
import { spread } from "../train/report.ts";
import { CONFIG_FILE, readRunFile } from "../train/run-dir.ts";
import { manifestName } from "./entry.ts";
import type { ExportOptions } from "./options.ts";

export interface Source {
  path: string;
  ckpt: Checkpoint;
  run: RunInfo;
  /** Set when this checkpoint is the one shipped of several seeds of the same model. */
  seeds?: SeedAccuracy;
}

/** One checkpoint file as an export's only source. */
export function checkpointSource(path: string, options: ExportOptions): Source {
  if (options.name !== undefined && !MODEL_NAME_PATTERN.test(options.name)) {
    throw new Error(
      `model name "${options.name}" must be lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  const ckpt = loadCheckpoint(path);
  refuseUnfinished(path, ckpt, options);
  return { path, ckpt, run: runOf(path) };
}

/** The final checkpoint of every sub-run (teacher and students) in a run directory, and the teacher file it distilled from, if any. */
export function runSources(runDir: string, options: ExportOptions): { sources: Source[]; teacherFile?: string } {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new Error(`${runDir}: run directory not found`);
  if (options.name !== undefined) throw new Error("a model name can only be given when exporting one checkpoint");
  const run = runInfo(runDir);
  const latest = new Map<string, Source>();
  for (const path of findCheckpoints(runDir)) {
    const ckpt = loadCheckpoint(path);
    const prev = latest.get(ckpt.meta.name);
    if (!prev || ckpt.meta.step > prev.ckpt.meta.step) latest.set(ckpt.meta.name, { path, ckpt, run });
  }
  if (latest.size === 0)
    throw new Error(`${runDir}: no checkpoints (*${CHECKPOINT_EXTENSION}) found; train first (npm run distill)`);
  for (const s of latest.values()) refuseUnfinished(s.path, s.ckpt, options);
  // A teacher given as an ONNX file goes into the manifest with the students it taught.
  const teacherFile = run.teacher && isOnnxFile(run.teacher) ? run.teacher : undefined;
  if (![...latest.values()].some((s) => s.ckpt.meta.role === "teacher")) {
    (options.log ?? console.log)(
      teacherFile
        ? `export: ${runDir} distilled from the ONNX file ${teacherFile}: it becomes the manifest's teacher`
        : `export: ${runDir} has no teacher sub-run (distilled from a teacher of another run?); the manifest keeps its teacher`,
    );
  }
  return {
    sources: oneSeedEach([...latest.values()], options.log ?? console.log),
    ...(teacherFile ? { teacherFile } : {}),
  };
}

/**
 * Sub-runs that are the same model trained with different seeds (same manifest name) ship as one:
 * the seed whose test accuracy is closest to their mean, carrying every seed's figure.
 */
function oneSeedEach(sources: Source[], log: (line: string) => void): Source[] {
  const groups = new Map<string, Source[]>();
  for (const s of sources) {
    const name = manifestName(s.ckpt.meta);
    groups.set(name, [...(groups.get(name) ?? []), s]);
  }
  return [...groups].map(([name, members]) => {
    if (members.length === 1) return members[0]!;
    const bySeed: Record<string, number> = {};
    for (const m of members) {
      const acc = m.ckpt.meta.history.at(-1)?.testAccuracy;
      const seed = Number(m.ckpt.meta.config.seed);
      if (acc === undefined)
        throw new Error(
          `${m.path}: ${m.ckpt.meta.name} has no test accuracy yet; finish it before exporting its seeds`,
        );
      if (String(seed) in bySeed) throw new Error(`${name}: two sub-runs with seed ${seed} (${m.path})`);
      bySeed[String(seed)] = acc;
    }
    const { mean, sd, n } = spread(Object.values(bySeed))!;
    const pick = members.reduce((best, m) =>
      Math.abs(bySeed[String(m.ckpt.meta.config.seed)]! - mean) <
      Math.abs(bySeed[String(best.ckpt.meta.config.seed)]! - mean)
        ? m
        : best,
    );
    const shipped = Number(pick.ckpt.meta.config.seed);
    log(
      `export: ${name}: ${members.length} seeds, test ${(100 * mean).toFixed(2)} ± ${(100 * sd).toFixed(2)}%; shipping seed ${shipped} (${(100 * bySeed[String(shipped)]!).toFixed(2)}%, the closest to the mean)`,
    );
    return { ...pick, seeds: { mean, sd, n, bySeed, shipped } };
  });
}

function refuseUnfinished(path: string, ckpt: Checkpoint, options: ExportOptions): void {
  if (ckpt.meta.done || options.allowUnfinished) return;
  throw new Error(
    `${path}: ${ckpt.meta.name} has not finished training (${ckpt.meta.epoch} epochs done); resume it with npm run distill, or pass --allow-unfinished`,
  );
}

/** Checkpoint files in a run directory and its sub-run directories (hidden folders skipped). */
function findCheckpoints(dir: string, depth = 3): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    const stat = statSync(path);
    if (stat.isDirectory() && depth > 0) found.push(...findCheckpoints(path, depth - 1));
    else if (stat.isFile() && name.endsWith(CHECKPOINT_EXTENSION)) found.push(path);
  }
  return found;
}

/** What the run directory says about its run: its id (the directory's name), preset and data location. */
export interface RunInfo {
  id: string;
  preset?: string;
  dataDir?: string;
  /** The run's configuration: how its data set of image files was read. */
  config?: DistillConfig;
  /** The teacher the run distilled from when it trained none (--teacher FILE), as its run file records it. */
  teacher?: string;
}

function runInfo(runDir: string): RunInfo {
  const id = basename(resolve(runDir));
  if (!existsSync(join(runDir, CONFIG_FILE))) return { id };
  const { preset, config, teacher } = readRunFile(runDir);
  return { id, preset, dataDir: config.data ?? undefined, config, ...(teacher ? { teacher } : {}) };
}

/** The run a checkpoint belongs to: the nearest folder above its own that holds a run's config.json, else its own folder. */
function runOf(checkpointPath: string): RunInfo {
  const own = dirname(resolve(checkpointPath));
  for (let dir = dirname(own); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, CONFIG_FILE))) return runInfo(dir);
  }
  return { id: basename(own) };
}
