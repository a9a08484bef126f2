// `npm run bench:train`: training and inference images/s of each preset's models (the teacher and the
// students, at the preset's widths) on every engine that loads here. Each engine runs in its own
// child process (a process has one tfjs backend); results go to .bench/train.json and .bench/train.md.
//
//   npm run bench:train -- [--presets full,quick] [--models teacher,unmodified,wide,narrow-deep]
//                          [--engines wasm-dp,wasm,wasm-xnnpack-dp,wasm-xnnpack,node-gpu,node,cpu]
//                          [--batches 64,128]
//                          [--inputs 28x28x1,32x32x3] [--seconds 4] [--repeats 3] [--out .bench] [--profile] [--kd]
//
// Engines: "wasm-dp" is the wasm backend data-parallel over all cores with native convolutions where
// onnxruntime-node loads (what training uses), "wasm" the same on one thread; "wasm-xnnpack(-dp)"
// keep the convolutions on the wasm backend's XNNPACK; the others are the tfjs backends of that name. An engine that does not load is listed
// as unavailable, with why. A measurement is the median of `--repeats` timed windows of at least
// `--seconds` each after two warm-up steps: other processes on the machine make single numbers noisy.
// The training step is the real one (engine/step.ts and engine/optimizer.ts: forward, loss, gradients,
// SGD with momentum) on random images. `--profile` adds, for the single-process engines, where a
// training step's time goes: tf.profile's time per kernel and input shapes, median of 3 steps
// (data-parallel engines are skipped: their kernels run in the replicas' threads, out of sight).
// `--kd` adds, for each student, the rate of a KD step that waits for its teacher's soft targets:
// the preset's teacher (random weights, same shape) in onnxruntime-node, as distillation runs it
// when a view is not in the teacher cache (train/teacher-cache.ts); a cached view costs a lookup.
import { execFileSync } from "node:child_process";
import os from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic, writeJsonAtomic } from "../training/io/atomic.ts";
import { createLoss } from "../training/losses/index.ts";
import { type Model, createModel, disposeModel, forward } from "../training/model/forward.ts";
import { type InputShape, countMacs, countParams } from "../training/model/graph.ts";
import { PRESETS } from "../training/config/presets.ts";
import { ARCHITECTURES, architecture, isArchitecture } from "../training/model/resnet.ts";
import { Sgd } from "../training/engine/optimizer.ts";
import { type GradientFn, trainStep } from "../training/engine/step.ts";
import { loadTeacher } from "../training/train/teacher.ts";
import type { Checkpoint } from "../training/train/checkpoint.ts";
import type { Batch } from "../training/data/batches.ts";
import { startTrainingEngine } from "../training/engine/index.ts";

const ENGINES = ["wasm-dp", "wasm", "wasm-xnnpack-dp", "wasm-xnnpack", "node-gpu", "node", "cpu"] as const;
type EngineName = (typeof ENGINES)[number];

interface Options {
  engines: EngineName[];
  presets: string[];
  /** Filter on the presets' models (all of them when empty). */
  models: string[];
  batches: number[];
  inputs: InputShape[];
  seconds: number;
  repeats: number;
  out: string;
  profile: boolean;
  kd: boolean;
}

/** One kernel, with the same input shapes, over a profiled training step. */
export interface KernelTime {
  kernel: string;
  inputs: string;
  calls: number;
  ms: number;
}

export interface Measurement {
  engine: EngineName;
  device: string;
  preset: string;
  model: string;
  widthScale: number;
  params: number;
  macs: number;
  input: string;
  batch: number;
  trainImagesPerSecond: number;
  inferImagesPerSecond: number;
  /** Images per CPU second of the process (all threads): the rate per fully available core. */
  trainImagesPerCpuSecond: number;
  inferImagesPerCpuSecond: number;
  /** 1-minute load average when the measurement ended: above the core count, other work competed. */
  loadAverage: number;
  /** With --profile, on single-process engines: one training step's kernels, largest first. */
  profile?: KernelTime[];
  /** With --kd, for students: a KD step including the teacher's forward pass (uncached). */
  kdTrainImagesPerSecond?: number;
  kdTrainImagesPerCpuSecond?: number;
}

const USAGE = `usage: npm run bench:train -- [--presets ${Object.keys(PRESETS).join(",")}] [--models ${Object.keys(ARCHITECTURES).join(",")}]
                             [--engines ${ENGINES.join(",")}] [--batches 64,128] [--inputs 28x28x1,32x32x3]
                             [--seconds 4] [--repeats 3] [--out .bench] [--profile] [--kd]`;

function fail(message: string): never {
  console.error(`bench:train: ${message}\n${USAGE}`);
  process.exit(2);
}

function parseInput(s: string): InputShape {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(s);
  if (!m) fail(`--inputs: "${s}" is not HxWxC`);
  return { height: Number(m[1]), width: Number(m[2]), channels: Number(m[3]) };
}

function parseArgs(argv: string[]): Options & { child: boolean } {
  const opts: Options & { child: boolean } = {
    engines: ["wasm-dp", "wasm", "wasm-xnnpack-dp", "node-gpu", "node"],
    presets: ["full", "quick"],
    models: [],
    batches: [64, 128],
    inputs: [parseInput("28x28x1"), parseInput("32x32x3")],
    seconds: 4,
    repeats: 3,
    out: ".bench",
    profile: false,
    kd: false,
    child: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(0);
    }
    if (flag === "--child" || flag === "--profile" || flag === "--kd") {
      opts[flag.slice(2) as "child" | "profile" | "kd"] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) fail(`${flag} needs a value`);
    const list = value.split(",").filter(Boolean);
    const positive = (v: string) => {
      const n = Number(v);
      if (!(n > 0) || !Number.isFinite(n)) fail(`${flag}: "${v}" is not a positive number`);
      return n;
    };
    switch (flag) {
      case "--engines":
        for (const e of list) if (!(ENGINES as readonly string[]).includes(e)) fail(`--engines: unknown engine "${e}"`);
        opts.engines = list as EngineName[];
        break;
      case "--presets":
        for (const p of list)
          if (!Object.hasOwn(PRESETS, p))
            fail(`--presets: unknown preset "${p}" (known: ${Object.keys(PRESETS).join(", ")})`);
        opts.presets = list;
        break;
      case "--models":
        for (const m of list) if (!isArchitecture(m)) fail(`--models: unknown model "${m}"`);
        opts.models = list;
        break;
      case "--batches":
        opts.batches = list.map((v) => {
          const n = positive(v);
          if (!Number.isInteger(n)) fail(`--batches: "${v}" is not an integer`);
          return n;
        });
        break;
      case "--inputs":
        opts.inputs = list.map(parseInput);
        break;
      case "--seconds":
        opts.seconds = positive(value);
        break;
      case "--repeats":
        opts.repeats = Math.round(positive(value));
        break;
      case "--out":
        opts.out = value;
        break;
      default:
        fail(`unknown option ${flag}`);
    }
  }
  return opts;
}

const inputName = (s: InputShape) => `${s.height}x${s.width}x${s.channels}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Images per second of `step` (one batch), median of `repeats` windows of at least `seconds` each:
 * per wall-clock second, and per CPU second of this process (all its threads). On a busy machine the
 * wall rate drops with the share of the cores this process gets; the CPU rate much less.
 */
async function rate(
  step: () => void | Promise<void>,
  batch: number,
  seconds: number,
  repeats: number,
): Promise<{ wall: number; cpu: number }> {
  for (let i = 0; i < 2; i++) await step();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    let steps = 0;
    do {
      await step();
      steps++;
    } while (performance.now() - start < seconds * 1000);
    const used = process.cpuUsage(cpuStart);
    wall.push((steps * batch) / ((performance.now() - start) / 1000));
    cpu.push((steps * batch) / ((used.user + used.system) / 1e6));
  }
  return { wall: median(wall), cpu: median(cpu) };
}

function randomBatch(size: number, input: InputShape, classes: number) {
  const images = new Float32Array(size * input.height * input.width * input.channels);
  for (let i = 0; i < images.length; i++) images[i] = Math.random() * 2 - 1;
  return { size, images, labels: Int32Array.from({ length: size }, (_, i) => i % classes) };
}

/** The teacher and students of each preset at the preset's widths, filtered by --models. */
function presetModels(opts: Options): { preset: string; name: string; widthScale: number }[] {
  return opts.presets.flatMap((preset) => {
    const c = PRESETS[preset]!;
    const models = [
      { preset, name: "teacher", widthScale: c.teacherWidthScale },
      ...c.students.map((name) => ({ preset, name, widthScale: c.widthScale })),
    ];
    return models.filter((m) => opts.models.length === 0 || opts.models.includes(m.name));
  });
}

/**
 * A training step under tf.profile: time per kernel and input shapes, largest first. Each row is the
 * median over `repeats` profiled steps, so that one step the VM stalled does not make the table.
 */
async function profileStep(step: () => void, repeats = 3): Promise<KernelTime[]> {
  const runs: Map<string, KernelTime>[] = [];
  for (let r = 0; r < repeats; r++) {
    const info = await tf.profile(step);
    const rows = new Map<string, KernelTime>();
    for (const k of info.kernels) {
      const inputs = (k.inputShapes ?? []).map((shape) => `[${shape?.join(",") ?? ""}]`).join(" ");
      const key = `${k.name} ${inputs}`;
      const row = rows.get(key) ?? { kernel: k.name, inputs, calls: 0, ms: 0 };
      row.calls++;
      row.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
      rows.set(key, row);
    }
    runs.push(rows);
  }
  return [...runs[0]!.entries()]
    .map(([key, row]) => ({ ...row, ms: median(runs.map((rows) => rows.get(key)?.ms ?? 0)) }))
    .sort((a, b) => b.ms - a.ms);
}

/** A KD step's rate: the teacher's soft targets from onnxruntime-node (as training loads it), then the step. */
async function kdRate(
  model: Model,
  sgd: Sgd,
  batch: Batch,
  input: InputShape,
  teacherWidth: number,
  gradients: GradientFn,
  opts: Options,
): Promise<{ wall: number; cpu: number }> {
  const graph = architecture("teacher", input, 10, teacherWidth);
  const init = createModel(graph, 2);
  const weights = new Map(
    [...init.params].map(([k, v]) => [k, { shape: v.shape, data: v.dataSync() as Float32Array }]),
  );
  disposeModel(init);
  const ckpt = { graph, weights, optimizer: new Map(), meta: {} } as unknown as Checkpoint;
  const teacher = await loadTeacher(ckpt, "onnx", batch, () => {});
  const kd = createLoss("kd");
  try {
    return await rate(
      async () => void trainStep(model, sgd, batch, kd, await teacher.logits(batch), 0.01, gradients),
      batch.size,
      opts.seconds,
      opts.repeats,
    );
  } finally {
    await teacher.dispose();
  }
}

/** Measures every model/input/batch on this process' engine; prints one JSON line per measurement. */
async function child(engineName: EngineName, opts: Options): Promise<void> {
  const wasm = engineName.startsWith("wasm");
  const backend = wasm ? "wasm" : engineName;
  const replicas = engineName.endsWith("-dp") ? os.availableParallelism() : 1;
  let engine: Awaited<ReturnType<typeof startTrainingEngine>>;
  try {
    engine = await startTrainingEngine(backend, {
      replicas,
      convolutions: engineName.startsWith("wasm-xnnpack") ? "wasm" : "native",
      log: () => {},
    });
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ unavailable: (err as Error).message })}\n`);
    return;
  }
  try {
    const loss = createLoss("ce");
    for (const { preset, name, widthScale } of presetModels(opts)) {
      for (const input of opts.inputs) {
        const graph = architecture(name, input, 10, widthScale);
        for (const batchSize of opts.batches) {
          const model: Model = createModel(graph, 1);
          const sgd = new Sgd(model.params, { momentum: 0.9, weightDecay: 5e-4, nesterov: false });
          const batch = randomBatch(batchSize, input, 10);
          const images = tf.tensor4d(batch.images, [batchSize, input.height, input.width, input.channels]);
          const step = () => void trainStep(model, sgd, batch, loss, null, 0.01, engine.gradients);
          const train = await rate(step, batchSize, opts.seconds, opts.repeats);
          const profile = opts.profile && engine.replicas === 1 ? await profileStep(step) : undefined;
          const infer = await rate(
            () => void tf.tidy(() => forward(model, images, { training: false }).dataSync()),
            batchSize,
            opts.seconds,
            opts.repeats,
          );
          const kd =
            opts.kd && name !== "teacher"
              ? await kdRate(model, sgd, batch, input, PRESETS[preset]!.teacherWidthScale, engine.gradients, opts)
              : undefined;
          images.dispose();
          sgd.dispose();
          disposeModel(model);
          const m: Measurement = {
            engine: engineName,
            device: engine.device,
            preset,
            model: name,
            widthScale,
            params: countParams(graph),
            macs: countMacs(graph),
            input: inputName(input),
            batch: batchSize,
            trainImagesPerSecond: train.wall,
            inferImagesPerSecond: infer.wall,
            trainImagesPerCpuSecond: train.cpu,
            inferImagesPerCpuSecond: infer.cpu,
            loadAverage: os.loadavg()[0]!,
            ...(profile ? { profile } : {}),
            ...(kd ? { kdTrainImagesPerSecond: kd.wall, kdTrainImagesPerCpuSecond: kd.cpu } : {}),
          };
          process.stdout.write(`${JSON.stringify(m)}\n`);
        }
      }
    }
  } finally {
    await engine.close();
  }
}

function markdown(results: Measurement[], unavailable: Record<string, string>, opts: Options): string {
  const lines = [
    `Training and inference throughput, images/s (median of ${opts.repeats} windows of ${opts.seconds} s; ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? "unknown CPU"}).`,
    "",
    `| engine | device | preset | model | width | params | MMACs/img | input | batch | train img/s | infer img/s | train img/CPU-s | infer img/CPU-s |${opts.kd ? " KD train img/s (teacher uncached) |" : ""} load avg |`,
    `|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|${opts.kd ? "---:|" : ""}---:|`,
    ...results.map(
      (r) =>
        `| ${r.engine} | ${r.device} | ${r.preset} | ${r.model} | ${r.widthScale} | ${(r.params / 1e3).toFixed(0)}k | ${(r.macs / 1e6).toFixed(1)} | ${r.input} | ${r.batch} | ${r.trainImagesPerSecond.toFixed(1)} | ${r.inferImagesPerSecond.toFixed(0)} | ${r.trainImagesPerCpuSecond.toFixed(1)} | ${r.inferImagesPerCpuSecond.toFixed(0)} |` +
        (opts.kd ? ` ${r.kdTrainImagesPerSecond === undefined ? "–" : r.kdTrainImagesPerSecond.toFixed(1)} |` : "") +
        ` ${r.loadAverage.toFixed(1)} |`,
    ),
  ];
  for (const [engine, why] of Object.entries(unavailable)) lines.push("", `${engine}: unavailable (${why})`);
  for (const r of results.filter((m) => m.profile)) lines.push("", ...profileTable(r));
  return `${lines.join("\n")}\n`;
}

/** The kernels behind most of a profiled step (the whole list is in train.json). */
function profileTable(r: Measurement): string[] {
  const rows = r.profile!;
  const total = rows.reduce((sum, k) => sum + k.ms, 0);
  const [shown, rest] = [rows.slice(0, 25), rows.slice(25)];
  return [
    `A training step of ${r.model} (${r.input}, batch ${r.batch}) on ${r.engine}: ${total.toFixed(1)} ms in ${rows.reduce((n, k) => n + k.calls, 0)} kernel calls (tf.profile, each row the median of 3 steps; time outside kernels is not counted).`,
    "",
    "| kernel | input shapes | calls | ms | share |",
    "|---|---|---:|---:|---:|",
    ...shown.map(
      (k) => `| ${k.kernel} | ${k.inputs} | ${k.calls} | ${k.ms.toFixed(2)} | ${((100 * k.ms) / total).toFixed(1)}% |`,
    ),
    ...(rest.length
      ? [
          `| ${rest.length} more | | ${rest.reduce((n, k) => n + k.calls, 0)} | ${rest.reduce((n, k) => n + k.ms, 0).toFixed(2)} | |`,
        ]
      : []),
  ];
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.child) {
    const engine = opts.engines[0]!;
    return child(engine, opts);
  }
  const results: Measurement[] = [];
  const unavailable: Record<string, string> = {};
  const passThrough = [
    "--presets",
    opts.presets.join(","),
    ...(opts.models.length ? ["--models", opts.models.join(",")] : []),
    "--batches",
    opts.batches.join(","),
    "--inputs",
    opts.inputs.map(inputName).join(","),
    "--seconds",
    String(opts.seconds),
    "--repeats",
    String(opts.repeats),
    ...(opts.profile ? ["--profile"] : []),
    ...(opts.kd ? ["--kd"] : []),
  ];
  for (const engine of opts.engines) {
    console.error(`bench:train: ${engine} ...`);
    let out: string;
    try {
      out = execFileSync(
        process.execPath,
        [...process.execArgv, process.argv[1]!, "--child", "--engines", engine, ...passThrough],
        { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 },
      );
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(
        `the ${engine} measurement failed: ${e.stderr?.trim().split("\n").slice(-3).join(" ") || e.message}`,
      );
    }
    for (const line of out.split("\n").filter(Boolean)) {
      const parsed = JSON.parse(line) as Measurement | { unavailable: string };
      if ("unavailable" in parsed) {
        unavailable[engine] = parsed.unavailable;
        console.error(`bench:train: ${engine} unavailable: ${parsed.unavailable}`);
        continue;
      }
      const m = parsed;
      results.push(m);
      console.error(
        `  ${m.preset} ${m.model} ${m.input} batch ${m.batch}: train ${m.trainImagesPerSecond.toFixed(1)} img/s (${m.trainImagesPerCpuSecond.toFixed(1)} per CPU-s), infer ${m.inferImagesPerSecond.toFixed(0)} img/s (${m.inferImagesPerCpuSecond.toFixed(0)} per CPU-s), load ${m.loadAverage.toFixed(1)}`,
      );
    }
  }
  const report = {
    date: new Date().toISOString(),
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? null,
    node: process.version,
    options: { ...opts, inputs: opts.inputs.map(inputName) },
    results,
    unavailable,
  };
  writeJsonAtomic(join(opts.out, "train.json"), report);
  const md = markdown(results, unavailable, opts);
  writeFileAtomic(join(opts.out, "train.md"), md);
  process.stdout.write(md);
}

await main();
