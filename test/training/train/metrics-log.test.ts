// metrics.jsonl keeps whole lines only (torn lines skipped and cut), agrees with a resumed sub-run's
// checkpoint (records past its step dropped, missing epochs written back from its history), and
// takes appends from several processes at once without losing or mixing lines.
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withFileLock } from "../../../training/io/file-lock.ts";
import type { CheckpointMeta, EpochMetrics } from "../../../training/train/checkpoint.ts";
import {
  MetricsLog,
  type MetricsRecord,
  distillationPart,
  epochRecord,
  readMetrics,
  reconciled,
} from "../../../training/train/metrics-log.ts";

const step = (subRun: string, s: number, epoch: number): MetricsRecord => ({
  subRun,
  kind: "step",
  epoch,
  step: s,
  loss: 1 / s,
  crossEntropy: 0.5 / s,
  trainAccuracy: 0.5,
  learningRate: 0.1,
  imagesPerSecond: 100,
});
const history = (epoch: number): EpochMetrics => ({
  epoch,
  trainLoss: 2 / epoch,
  trainCrossEntropy: 1 / epoch,
  trainAccuracy: 0.8,
  valAccuracy: 0.7 + epoch / 100,
  valLoss: 0.9,
  learningRate: 0.05,
  imagesPerSecond: 200,
  seconds: 30,
});
const meta = (step: number, epochs: number) =>
  ({ step, history: Array.from({ length: epochs }, (_, i) => history(i + 1)) }) as unknown as CheckpointMeta;

describe("metrics log", () => {
  it("splits a loss into its labels part and the rest", () => {
    expect(distillationPart(1.0, 0.4, 0.1)).toBeCloseTo(0.96, 12);
    expect(distillationPart(1.0, 0.4, null)).toBeUndefined();
    const r = epochRecord("a", history(2), 10, 0.1);
    expect(r).toMatchObject({
      subRun: "a",
      kind: "epoch",
      epoch: 2,
      step: 20,
      loss: 1,
      crossEntropy: 0.5,
      valAccuracy: 0.72,
    });
    expect(r.distillation).toBeCloseTo(0.95, 12);
    expect(epochRecord("a", history(2), 10, null).distillation).toBeUndefined();
  });

  it("skips a torn last line and cuts it before the next append", () => {
    const dir = mkdtempSync(join(tmpdir(), "nd-metrics-"));
    const log = new MetricsLog(dir);
    log.append(step("a", 5, 1));
    appendFileSync(log.path, '{"subRun":"a","kind":"step","epo'); // a writer killed mid-line
    expect(readMetrics(log.path)).toEqual([step("a", 5, 1)]);
    log.append(step("a", 10, 1));
    expect(readFileSync(log.path, "utf8").split("\n")).toHaveLength(3); // two lines and the final newline
    expect(readMetrics(log.path)).toEqual([step("a", 5, 1), step("a", 10, 1)]);
    // A file holding nothing but a torn line is cut to nothing.
    writeFileSync(log.path, '{"subRun":"a"');
    log.append(step("b", 1, 1));
    expect(readFileSync(log.path, "utf8")).toBe(`${JSON.stringify(step("b", 1, 1))}\n`);
    expect(readMetrics(join(dir, "none.jsonl"))).toEqual([]);
  });

  it("keeps a resumed sub-run's records up to its checkpoint and writes back the epochs it lacks", () => {
    // Sub-run a: 10 steps an epoch; checkpoint after 2 epochs (step 20). The file has steps 5-25 of
    // a, its epoch 1 record but not epoch 2's (killed between checkpoint and log line), and b's records.
    const recs = [
      step("b", 5, 1),
      step("a", 5, 1),
      step("a", 10, 1),
      epochRecord("a", history(1), 10, null),
      step("a", 15, 2),
      step("a", 20, 2),
      step("b", 10, 1),
      step("a", 25, 3),
    ];
    const out = reconciled(recs, "a", meta(20, 2), 10, null);
    expect(out.map((r) => `${r.subRun}:${r.kind}:${r.step}`)).toEqual([
      "b:step:5",
      "a:step:5",
      "a:step:10",
      "a:epoch:10",
      "a:step:15",
      "a:step:20",
      "a:epoch:20",
      "b:step:10",
    ]);
    expect(out.find((r) => r.kind === "epoch" && r.epoch === 2)).toEqual(epochRecord("a", history(2), 10, null));
    // No checkpoint: the sub-run starts again, none of its records stay.
    expect(reconciled(recs, "a", null, 10, null).map((r) => r.subRun)).toEqual(["b", "b"]);
    // A missing file: every epoch of the history.
    expect(reconciled([], "a", meta(30, 3), 10, null).map((r) => r.epoch)).toEqual([1, 2, 3]);
  });

  it("rewrites the file only when it disagrees with the checkpoint", () => {
    const dir = mkdtempSync(join(tmpdir(), "nd-metrics-"));
    const log = new MetricsLog(dir);
    log.reconcile("a", null, 10, null);
    expect(existsSync(log.path)).toBe(false); // nothing to say yet: no file
    for (const r of [step("a", 5, 1), step("a", 10, 1), step("a", 15, 2)]) log.append(r);
    log.reconcile("a", meta(10, 1), 10, null);
    expect(readMetrics(log.path).map((r) => `${r.kind}:${r.step}`)).toEqual(["step:5", "step:10", "epoch:10"]);
  });

  it("takes appends from two processes at once, every line whole", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nd-metrics-"));
    const moduleUrl = new URL("../../../training/train/metrics-log.ts", import.meta.url).href;
    const script = join(dir, "append.ts");
    writeFileSync(
      script,
      `import { MetricsLog } from ${JSON.stringify(moduleUrl)};\n` +
        `const log = new MetricsLog(${JSON.stringify(dir)});\n` +
        `for (let i = 1; i <= 150; i++) log.append({ subRun: process.argv[2], kind: "step", epoch: 1, step: i, loss: 1, trainAccuracy: 0, learningRate: 0.1, imagesPerSecond: 1, time: "x".repeat(2000) });\n`,
    );
    const run = (name: string) =>
      new Promise<number>((resolve) =>
        spawn(process.execPath, ["--import", "tsx", script, name], { stdio: "inherit" }).on("exit", (code) =>
          resolve(code ?? -1),
        ),
      );
    expect(await Promise.all([run("p"), run("q")])).toEqual([0, 0]);
    const lines = readFileSync(join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean);
    expect(lines).toHaveLength(300);
    const recs = readMetrics(join(dir, "metrics.jsonl"));
    expect(recs).toHaveLength(300);
    for (const name of ["p", "q"])
      expect(recs.filter((r) => r.subRun === name).map((r) => r.step)).toEqual(
        Array.from({ length: 150 }, (_, i) => i + 1),
      );
  });

  it("takes over a lock whose owner died, and waits for a live one", () => {
    const dir = mkdtempSync(join(tmpdir(), "nd-lock-"));
    const file = join(dir, "f");
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    writeFileSync(`${file}.lock`, dead);
    expect(withFileLock(file, () => 7)).toBe(7);
    expect(existsSync(`${file}.lock`)).toBe(false);
    writeFileSync(`${file}.lock`, String(process.ppid)); // alive, not us
    expect(() => withFileLock(file, () => 0, 100)).toThrow(/f\.lock: held by another process/);
  });
});
