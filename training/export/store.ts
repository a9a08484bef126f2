// models/ is written as one transaction, so that neither a model file nor the manifest is ever seen
// half-written and the two never disagree once the transaction is resolved:
//
//   1. every new model file is written (atomically) into models/.staging/
//   2. the new manifest is written (atomically) into models/.staging/   <- the commit point
//   3. the staged model files are renamed into models/, then the manifest, then .staging/ is removed
//
// A process killed before step 2 completes leaves models/ as it was (the next export discards the
// staging folder); one killed after it is rolled forward by the next export (recoverModels). One
// writer at a time: models/.export.lock holds its pid, and other exports wait for it.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Manifest, MANIFEST_SCHEMA_VERSION, ManifestError, parseManifest } from "../../models/schema.ts";
import { writeFileAtomic, writeJsonAtomic } from "../io/atomic.ts";

export const MANIFEST_FILE = "manifest.json";
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const STAGING = ".staging";
const LOCK = ".export.lock";

export interface ModelFile {
  /** Plain file name inside models/. */
  file: string;
  bytes: Uint8Array;
}

/** The manifest in modelsDir, or an empty one when there is none yet. */
export function readManifest(modelsDir: string): Manifest {
  const path = join(modelsDir, MANIFEST_FILE);
  if (!existsSync(path)) return { schemaVersion: MANIFEST_SCHEMA_VERSION, defaultStudent: "none", models: [] };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ManifestError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseManifest(json);
}

/**
 * Test hook for the crash-consistency test: with NARROWDEEP_EXPORT_PAUSE_AT=<step> the process says
 * "export: paused at <step>" on stderr and blocks there, so a test can kill it at a known point.
 */
function checkpointStep(step: "staged-models" | "committed" | "placed-model" | "placed-manifest"): void {
  if (process.env.NARROWDEEP_EXPORT_PAUSE_AT !== step) return;
  process.stderr.write(`export: paused at ${step}\n`);
  sleepSync(120_000);
}

function stagedModelFiles(staging: string): string[] {
  // writeFileAtomic's temporary files start with "."; they belong to an unfinished write.
  return readdirSync(staging).filter((f) => !f.startsWith(".") && f !== MANIFEST_FILE);
}

/**
 * Resolves a transaction a killed export left behind: completes it when its manifest is still staged
 * (it was committed but not all placed), else discards the staging folder (either the transaction
 * never committed, or it was all placed and only the clean-up was left). Returns what it did.
 */
export function recoverModels(modelsDir: string): "clean" | "discarded" | "completed" {
  const staging = join(modelsDir, STAGING);
  if (!existsSync(staging)) return "clean";
  if (!existsSync(join(staging, MANIFEST_FILE))) {
    rmSync(staging, { recursive: true, force: true });
    return "discarded";
  }
  placeStaged(modelsDir);
  return "completed";
}

function placeStaged(modelsDir: string): void {
  const staging = join(modelsDir, STAGING);
  for (const file of stagedModelFiles(staging)) {
    renameSync(join(staging, file), join(modelsDir, file));
    checkpointStep("placed-model");
  }
  renameSync(join(staging, MANIFEST_FILE), join(modelsDir, MANIFEST_FILE));
  checkpointStep("placed-manifest");
  rmSync(staging, { recursive: true, force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Who holds the lock: a live pid, "stale" (its writer died), or "unknown" (being created or just freed). */
function lockHolder(lock: string): number | "stale" | "unknown" {
  let text: string;
  try {
    text = readFileSync(lock, "utf8");
  } catch {
    return "unknown";
  }
  const pid = Number.parseInt(text, 10);
  // Created but its pid not written yet, unless that was long ago (a writer killed in between).
  if (!Number.isInteger(pid)) {
    const created = statSync(lock, { throwIfNoEntry: false })?.mtimeMs;
    return created !== undefined && Date.now() - created > 10_000 ? "stale" : "unknown";
  }
  return pid !== process.pid && isAlive(pid) ? pid : "stale";
}

/**
 * Runs `fn` holding models/.export.lock. Another export holding it is waited for (it holds the lock
 * only while writing, not while verifying); a lock left by a dead process is taken over.
 */
function withModelsLock<T>(modelsDir: string, timeoutMs: number, fn: () => T): T {
  const lock = join(modelsDir, LOCK);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = lockHolder(lock);
    if (holder === "stale") {
      rmSync(lock, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `${modelsDir} is being written by another export (pid ${holder}) for more than ${timeoutMs / 1000} s; try again when it has finished`,
      );
    }
    sleepSync(100);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/**
 * Writes model files and the manifest that describes them as one transaction (see the top of this
 * file): `update` gets the current manifest (under the lock) and returns the new one, which is
 * validated before anything is written. Returns the manifest written.
 */
export function updateModels(
  modelsDir: string,
  files: ModelFile[],
  update: (current: Manifest) => Manifest,
  { lockTimeoutMs = 120_000 } = {},
): Manifest {
  for (const f of files) {
    if (f.file.includes("/") || f.file.startsWith(".") || f.file === MANIFEST_FILE)
      throw new Error(`bad model file name "${f.file}"`);
  }
  mkdirSync(modelsDir, { recursive: true });
  return withModelsLock(modelsDir, lockTimeoutMs, () => {
    recoverModels(modelsDir);
    const next = parseManifest(update(readManifest(modelsDir)));
    const staging = join(modelsDir, STAGING);
    for (const f of files) writeFileAtomic(join(staging, f.file), f.bytes);
    checkpointStep("staged-models");
    writeJsonAtomic(join(staging, MANIFEST_FILE), next);
    checkpointStep("committed");
    placeStaged(modelsDir);
    return next;
  });
}
