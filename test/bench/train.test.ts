// `npm run bench:train` as a user runs it, on tiny settings: the report files, and with --profile the
// per-kernel time of a training step for single-process engines only.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Measurement } from "../../bench/train.ts";

const BENCH = join(import.meta.dirname, "../../bench/train.ts");

describe("bench:train", () => {
  it("writes JSON and markdown, and profiles a step's kernels on the single-process engine", () => {
    const out = mkdtempSync(join(tmpdir(), "nd-bench-train-"));
    const args = [
      "--engines",
      "wasm,wasm-dp",
      "--presets",
      "quick",
      "--models",
      "unmodified",
      "--batches",
      "8",
      "--inputs",
      "12x12x1",
      "--seconds",
      "0.1",
      "--repeats",
      "1",
      "--profile",
      "--out",
      out,
    ];
    execFileSync(process.execPath, ["--import", "tsx", BENCH, ...args], { stdio: "pipe" });
    const report = JSON.parse(readFileSync(join(out, "train.json"), "utf8")) as { results: Measurement[] };
    const [single, parallel] = report.results;
    expect([single?.engine, parallel?.engine]).toEqual(["wasm", "wasm-dp"]);
    for (const m of report.results) expect(m.trainImagesPerSecond).toBeGreaterThan(0);
    expect(parallel!.profile).toBeUndefined(); // its kernels run in the replicas' threads
    const profile = single!.profile!;
    const calls = (kernel: string) => profile.filter((k) => k.kernel === kernel).reduce((n, k) => n + k.calls, 0);
    // unmodified: a stem, 6 blocks of two 3x3 convolutions and 2 strided 1x1 shortcuts
    expect(calls("Conv2D")).toBe(15);
    expect(calls("Conv2DBackpropFilter")).toBe(15);
    expect(profile.every((k) => k.ms >= 0)).toBe(true);
    expect(profile.map((k) => k.ms)).toEqual([...profile.map((k) => k.ms)].sort((a, b) => b - a));
    const md = readFileSync(join(out, "train.md"), "utf8");
    expect(md).toContain("| wasm-dp |");
    expect(md).toMatch(/A training step of unmodified \(12x12x1, batch 8\) on wasm: [\d.]+ ms in \d+ kernel calls/);
  });

  it("measures a KD step with its teacher's soft targets (--kd), for students only", () => {
    const out = mkdtempSync(join(tmpdir(), "nd-bench-train-"));
    const args = [
      "--engines",
      "wasm",
      "--presets",
      "quick",
      "--models",
      "teacher,wide",
      "--batches",
      "8",
      "--inputs",
      "12x12x1",
      "--seconds",
      "0.1",
      "--repeats",
      "1",
      "--kd",
      "--out",
      out,
    ];
    execFileSync(process.execPath, ["--import", "tsx", BENCH, ...args], { stdio: "pipe" });
    const { results } = JSON.parse(readFileSync(join(out, "train.json"), "utf8")) as { results: Measurement[] };
    expect(results.map((m) => m.model)).toEqual(["teacher", "wide"]);
    expect(results[0]!.kdTrainImagesPerSecond).toBeUndefined();
    expect(results[1]!.kdTrainImagesPerSecond).toBeGreaterThan(0);
    expect(readFileSync(join(out, "train.md"), "utf8")).toContain("KD train img/s (teacher uncached)");
  });

  it("refuses an unknown option, naming it", () => {
    let stderr = "";
    try {
      execFileSync(process.execPath, ["--import", "tsx", BENCH, "--profiles", "all"], { stdio: "pipe" });
    } catch (err) {
      stderr = String((err as { stderr: Buffer }).stderr);
    }
    expect(stderr).toContain("unknown option --profiles");
  });
});
