// An export killed at any point of writing models/ leaves every file whole, and the next export (or
// recoverModels) resolves the interrupted transaction to the old state or the new one, never a mix.
// The CLI runs in a child process; NARROWDEEP_EXPORT_PAUSE_AT stops it at a named step to be killed.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { type Manifest, parseManifest } from "../../../models/schema.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { exportRun } from "../../../training/export/index.ts";
import { recoverModels } from "../../../training/export/store.ts";
import { saveCheckpoint } from "../../../training/train/checkpoint.ts";
import { fixtureCheckpoint } from "./fixtures.ts";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const digest = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
// int8 variants are written in the same transaction as any file; int8.test.ts tests them.
const options = ["--accuracy-samples", "64", "--no-readme", "--backend", "wasm", "--no-int8"];

interface State {
  manifest: Manifest;
  /** sha256 of each model file. */
  files: Record<string, string>;
}
function readState(dir: string): State {
  const manifest = parseManifest(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
  const files = Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith(".onnx"))
      .map((f) => [f, digest(readFileSync(join(dir, f)))]),
  );
  return { manifest, files };
}

function runWith(subRuns: { arch: string; seed: number }[]): string {
  const dir = tmp("run-");
  for (const { arch, seed } of subRuns) {
    const ckpt = fixtureCheckpoint({ architecture: arch, widthScale: 0.125, seed });
    saveCheckpoint(join(dir, ckpt.meta.name, "last.ndckpt"), ckpt);
  }
  return dir;
}

/** Runs the export CLI until it says it paused at `step`, then SIGKILLs it. */
function exportKilledAt(runDir: string, modelsDir: string, step: string): Promise<void> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", "training/cli/export.ts", runDir, "--models-dir", modelsDir, ...options],
    {
      cwd: REPO,
      env: { ...process.env, NARROWDEEP_EXPORT_PAUSE_AT: step },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  return new Promise((resolve, reject) => {
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes(`export: paused at ${step}`)) child.kill("SIGKILL");
    });
    child.on("exit", (code, signal) =>
      signal === "SIGKILL"
        ? resolve()
        : reject(new Error(`export exited (${code}) without pausing at ${step}:\n${stderr}`)),
    );
  });
}

let oldRun: string;
let newRun: string;
let oldModels: string;
let oldState: State;
let newState: State;

beforeAll(async () => {
  await initBackend("wasm", { log: () => {} });
  oldRun = runWith([
    { arch: "narrow-deep", seed: 1 },
    { arch: "wide", seed: 1 },
  ]);
  newRun = runWith([
    { arch: "narrow-deep", seed: 2 },
    { arch: "wide", seed: 2 },
  ]);
  oldModels = tmp("models-old-");
  await exportRun(oldRun, { modelsDir: oldModels, accuracySamples: 64, int8: false, log: () => {} });
  oldState = readState(oldModels);
  const newModels = tmp("models-new-");
  cpSync(oldModels, newModels, { recursive: true });
  await exportRun(newRun, { modelsDir: newModels, accuracySamples: 64, int8: false, log: () => {} });
  newState = readState(newModels);
  expect(newState.files["narrow-deep.onnx"]).not.toBe(oldState.files["narrow-deep.onnx"]);
});

/** What identifies a state: the files' digests and what the manifest says each file is. */
const strip = (s: State) => ({
  files: s.files,
  models: s.manifest.models.map((m) => ({ name: m.name, file: m.file, sha256: m.sha256, bytes: m.bytes })),
  defaultStudent: s.manifest.defaultStudent,
});

describe("an export killed while writing models/", () => {
  const cases = [
    { step: "staged-models", recovery: "discarded", state: "old" },
    { step: "committed", recovery: "completed", state: "new" },
    { step: "placed-model", recovery: "completed", state: "new" },
    { step: "placed-manifest", recovery: "discarded", state: "new" },
  ] as const;
  for (const { step, recovery, state } of cases) {
    it(`at "${step}": every file is old or new and whole, and recovery leaves the ${state} state`, async () => {
      const models = tmp(`models-${step}-`);
      cpSync(oldModels, models, { recursive: true });
      await exportKilledAt(newRun, models, step);

      const torn = readState(models); // the manifest parses: it was never half-written
      for (const [file, sha] of Object.entries(torn.files))
        expect([oldState.files[file], newState.files[file]]).toContain(sha);
      expect([oldState.manifest.models[0]!.sha256, newState.manifest.models[0]!.sha256]).toContain(
        torn.manifest.models[0]!.sha256,
      );

      expect(recoverModels(models)).toBe(recovery);
      const resolved = readState(models);
      for (const m of resolved.manifest.models) expect(resolved.files[m.file]).toBe(m.sha256);
      expect(strip(resolved)).toEqual(strip(state === "old" ? oldState : newState));
      expect(existsSync(join(models, ".staging"))).toBe(false);
    });
  }

  it("does not block the next export: the dead writer's lock is taken over and its transaction resolved first", async () => {
    const models = tmp("models-next-");
    cpSync(oldModels, models, { recursive: true });
    await exportKilledAt(newRun, models, "committed");
    expect(existsSync(join(models, ".export.lock"))).toBe(true);
    await exportRun(oldRun, { modelsDir: models, accuracySamples: 64, int8: false, log: () => {} });
    expect(strip(readState(models))).toEqual(strip(oldState));
    expect(readdirSync(models).filter((f) => f.startsWith("."))).toEqual([]);
  });
});
