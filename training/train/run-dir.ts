// The run directory's identity: config.json holds the resolved configuration a run was started with,
// so `--resume DIR` continues that run and a second run never lands in the same directory.
// (No tfjs here: the CLI checks the run directory before it loads the engine.)
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import type { DistillConfig } from "../config/schema.ts";
import { writeJsonAtomic } from "../io/atomic.ts";

export const CONFIG_FILE = "config.json";

/** What a run is started with besides its configuration. */
export interface RunOptions {
  /**
   * The teacher checkpoint given with --teacher, so a resumed run distills from the same one: relative
   * to the working directory when inside it (a committed run resumes in another checkout), else absolute.
   */
  teacher?: string;
  /** The sub-runs given with --only, so `--resume` trains those and not the whole plan. */
  only?: string[];
}

export interface RunFile extends RunOptions {
  preset: string;
  config: DistillConfig;
  createdAt: string;
}

function storedPath(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel.startsWith("..") || isAbsolute(rel) ? resolve(file) : rel;
}

/** The first difference between two JSON values, as "path: a vs b", or null when equal. */
export function firstDifference(a: unknown, b: unknown, path = ""): string | null {
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
      );
      if (d) return d;
    }
    return null;
  }
  return a === b ? null : `${path || "(value)"}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

/** Creates a run directory (refusing one that already holds a run) or checks the one being resumed. */
export function openRunDir(
  runDir: string,
  preset: string,
  config: DistillConfig,
  resume: boolean,
  { teacher, only }: RunOptions = {},
): void {
  const path = join(runDir, CONFIG_FILE);
  if (!resume) {
    if (existsSync(path))
      throw new Error(`${runDir} already holds a run; resume it with --resume ${runDir}, or choose another --run-dir`);
    mkdirSync(runDir, { recursive: true });
    writeJsonAtomic(path, {
      preset,
      config,
      createdAt: new Date().toISOString(),
      ...(teacher ? { teacher: storedPath(teacher) } : {}),
      ...(only?.length ? { only } : {}),
    } satisfies RunFile);
    return;
  }
  const stored = readRunFile(runDir);
  const diff = firstDifference(stored.config, config);
  if (diff) throw new Error(`${path}: the run was started with a different configuration (${diff})`);
  if (teacher && stored.teacher && resolve(teacher) !== resolve(stored.teacher))
    throw new Error(`${path}: the run distills from ${stored.teacher}, not ${teacher}`);
  // A run started without a teacher (its baselines need none) records the one it is first given.
  if (teacher && !stored.teacher) writeJsonAtomic(path, { ...stored, teacher: storedPath(teacher) } satisfies RunFile);
}

export function readRunFile(runDir: string): RunFile {
  const path = join(runDir, CONFIG_FILE);
  if (!existsSync(path))
    throw new Error(`${runDir}: no ${CONFIG_FILE} here, so nothing to resume (start a run with --run-dir ${runDir})`);
  try {
    return JSON.parse(readFileSync(path, "utf8")) as RunFile;
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
}
