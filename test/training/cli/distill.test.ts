// The distill CLI as a user runs it: a separate process, killed with SIGKILL at random moments and
// resumed, must end exactly where an uninterrupted run ends, with the same metrics.jsonl, and never
// leave a corrupt checkpoint.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadCheckpoint } from "../../../training/train/checkpoint.ts";
import { type MetricsRecord, readMetrics } from "../../../training/train/metrics-log.ts";
import { writeLearnableFashionMnist } from "../data/fixtures.ts";
import { comparable } from "../train/compare.ts";

const CLI = join(import.meta.dirname, "../../../training/cli/distill.ts");
let dataDir: string;

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), "nd-cli-data-"));
  writeLearnableFashionMnist(dataDir, { train: 112, test: 32 });
});

const tiny = () => [
  "--data",
  dataDir,
  "--val-size",
  "16",
  "--students",
  "narrow-deep",
  "--width-scale",
  "0.2",
  "--teacher-width-scale",
  "0.125",
  "--epochs",
  "2",
  "--teacher-epochs",
  "1",
  "--batch-size",
  "16",
  "--eval-batch-size",
  "64",
  "--backend",
  "wasm",
  "--replicas",
  "1",
  "--metrics-every",
  "2",
  "--no-export",
  "--no-progress",
];

/** Each run's teacher-logits cache goes to a directory of its own (by default it is the repository's). */
function start(
  args: string[],
  cacheDir = mkdtempSync(join(tmpdir(), "nd-cli-cache-")),
): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> } {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NARROWDEEP_CACHE_DIR: cacheDir },
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, output })),
  );
  return { child, done };
}

const run = (args: string[], cacheDir?: string) => start(args, cacheDir).done;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Optimizer steps saved over all checkpoints of the run; every checkpoint present must load. */
function stepsDone(runDir: string): number {
  if (!existsSync(runDir)) return 0;
  let steps = 0;
  for (const sub of readdirSync(runDir, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    const p = join(runDir, sub.name, "checkpoint.ndckpt");
    if (existsSync(p)) steps += loadCheckpoint(p).meta.step;
  }
  return steps;
}

describe("npm run distill", () => {
  it("resumes after SIGTERM and after SIGKILL at random moments and ends in the same state as an uninterrupted run", async () => {
    const only = ["--only", "teacher,narrow-deep-kd"];
    const reference = mkdtempSync(join(tmpdir(), "nd-cli-ref-"));
    const ref = await run([...tiny(), ...only, "--checkpoint-minutes", "0", "--run-dir", join(reference, "run")]);
    expect(ref.code, ref.output).toBe(0);

    const runDir = join(mkdtempSync(join(tmpdir(), "nd-cli-kill-")), "run");
    // The interrupted processes share one cache of the teacher's soft targets, as a resumed run does.
    const cache = mkdtempSync(join(tmpdir(), "nd-cli-cache-"));
    // Checkpoints every few milliseconds, so kills land during writes too.
    let args = [...tiny(), ...only, "--checkpoint-minutes", "0.00005", "--run-dir", runDir];
    const kills: string[] = [];
    // First a polite stop: SIGTERM checkpoints the current step and exits with 130. It comes twice at
    // once, as when npm and tsx pass a `pkill` or a terminal's Ctrl-C on: still a polite stop.
    {
      const { child, done } = start(args, cache);
      while (child.exitCode === null && stepsDone(runDir) === 0) await sleep(20);
      await sleep(Math.floor(Math.random() * 500));
      child.kill("SIGTERM");
      child.kill("SIGTERM");
      const r = await done;
      expect(r.code, r.output).toBe(130);
      expect(r.output).toMatch(
        /SIGTERM: finishing the current step[\s\S]*stopped; continue with: npm run distill -- --resume/,
      );
      kills.push(`SIGTERM after step ${stepsDone(runDir)}`);
      // No --only: the run remembers the sub-runs it was started with.
      args = ["--resume", runDir, "--no-export", "--no-progress"];
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      const before = stepsDone(runDir);
      const { child, done } = start(args, cache);
      // Kill once this attempt has made progress, at a random moment after that.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && child.exitCode === null && stepsDone(runDir) <= before) await sleep(20);
      const delay = Math.floor(Math.random() * 1000);
      await sleep(delay);
      const killed = child.kill("SIGKILL");
      const r = await done;
      kills.push(`attempt ${attempt}: after step ${before}, +${delay} ms, ${r.signal ?? `exit ${r.code}`}`);
      if (!killed || r.signal !== "SIGKILL") break; // finished before the kill landed
    }
    console.log(`SIGKILL test: ${kills.join("; ")}`);
    const last = await run(["--resume", runDir, ...only, "--no-export", "--no-progress"], cache);
    expect(last.code, `${kills.join("; ")}\n${last.output}`).toBe(0);
    expect(readdirSync(cache).filter((f) => /^teacher-logits-[0-9a-f]{32}\.bin$/.test(f))).toHaveLength(1);
    for (const dir of [runDir, join(runDir, "teacher"), join(runDir, "narrow-deep-kd")])
      expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    for (const sub of ["teacher", "narrow-deep-kd"]) {
      const a = loadCheckpoint(join(reference, "run", sub, "checkpoint.ndckpt"));
      const b = loadCheckpoint(join(runDir, sub, "checkpoint.ndckpt"));
      expect(b.meta.done).toBe(true);
      expect(comparable(b), `${sub} after ${kills.join("; ")}`).toEqual(comparable(a));
    }
    // The same records as the uninterrupted run, in the same order: none lost, none twice.
    const records = (dir: string) =>
      readMetrics(join(dir, "metrics.jsonl")).map(({ time: _t, imagesPerSecond: _i, ...r }: MetricsRecord) => r);
    expect(records(runDir), kills.join("; ")).toEqual(records(join(reference, "run")));
    expect(
      records(runDir)
        .filter((r) => r.kind === "epoch")
        .map((r) => `${r.subRun} ${r.epoch}`),
    ).toEqual(["teacher 1", "narrow-deep-kd 1", "narrow-deep-kd 2"]);
    expect(readFileSync(join(runDir, "curves.svg"), "utf8")).toMatch(/^<svg /);
    const report = JSON.parse(readFileSync(join(runDir, "report.json"), "utf8"));
    expect(report.models.map((m: { name: string }) => m.name)).toEqual(["teacher", "narrow-deep-kd"]);
    expect(
      readdirSync(runDir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort(),
    ).toEqual(["narrow-deep-kd", "teacher"]);
    expect(readdirSync(runDir).filter((f) => f.endsWith(".lock"))).toEqual([]);
  }, 600_000); // five processes one after another: about 40 s on an idle 2-core machine, much more on a busy one

  it("exports the quick demo next to its run, never over the shipped models/", async () => {
    const shipped = join(import.meta.dirname, "../../../models/manifest.json");
    const before = readFileSync(shipped, "utf8");
    const runDir = join(mkdtempSync(join(tmpdir(), "nd-cli-")), "demo");
    const r = await run(["--run-dir", runDir, ...tiny().filter((a) => a !== "--no-export"), "--epochs", "1"]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(
      /the shipped models\/ are untouched; to serve these instead: npm run export -- .*demo --force/,
    );
    const manifest = JSON.parse(readFileSync(join(runDir, "models", "manifest.json"), "utf8"));
    // int8 variants join them when they pass their parity check (these tiny students may not).
    expect(manifest.models.map((m: { name: string }) => m.name).filter((n: string) => !n.endsWith("-int8"))).toEqual([
      "teacher",
      "narrow-deep",
      "narrow-deep-baseline",
    ]);
    expect(existsSync(join(runDir, "models", "narrow-deep.onnx"))).toBe(true);
    expect(readFileSync(shipped, "utf8")).toBe(before);
  }, 300_000);

  it("is started by npm under plain node: the tsx CLI would SIGKILL a child busy in a training step", () => {
    // tsx's CLI relays SIGINT/SIGTERM and SIGKILLs its child when the child does not confirm the
    // signal within 30 ms: a synchronous training step takes longer, so Ctrl-C lost the step's checkpoint.
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "../../../package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.distill).toMatch(/^node --import tsx training\/cli\/distill\.ts$/);
  });

  it("explains bad usage with exit code 2", async () => {
    const bad = await run(["--epochs", "zero"]);
    expect(bad.code).toBe(2);
    expect(bad.output).toMatch(
      /distill: --epochs: epochs must be a whole number, got null|--epochs: epochs must be a whole number/,
    );
    const unknown = await run(["--epoch", "3"]);
    expect(unknown.code).toBe(2);
    expect(unknown.output).toMatch(/unknown option --epoch \(see --help\)/);
    const resume = await run(["--resume", join(dataDir, "nothing-here")]);
    expect(resume.code).toBe(1);
    expect(resume.output).toMatch(/nothing-here: no config\.json here, so nothing to resume/);
    const describe = await run(["--describe", "--data", dataDir, "--students", "wide"]);
    expect(describe.code, describe.output).toBe(0);
    expect(describe.output).toMatch(/model teacher x0\.5: [\d,]+ params, [\d,]+ MACs\/image/);
    expect(describe.output).toMatch(/sub-runs: teacher, wide-kd, wide-baseline\n/);
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.output).toMatch(/--teacher-epochs N/);
    // Computed from the measured throughput: the committed reports' 31.9 h for the full preset.
    expect(help.output).toMatch(/full \(all data, full width,\s+3 seeds: 31\.9 h\)/);
    expect(help.output).toMatch(/--metrics-every N/);
  });
});
