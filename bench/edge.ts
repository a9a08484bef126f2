// Edge benchmark (not a test): for each student, fp32 and int8, request latency through `wrangler dev`
// over loopback at concurrency 1 and 16; the Worker's own inference time and its overhead around it
// (its Server-Timing header: `total` minus `inference`, at c=1); onnxruntime-node on one thread
// running the fp32 model (an int8 model's fp32 twin) and the ratio to it; onnxruntime-web's WASM in
// Node on the model itself (the same engine without the Worker); MACs, convolutions, the
// file's sha256; the bundle size (raw and gzip); the first request of each model (cold start); and
// the first requests of a fresh isolate with warm-up off, in the background, and blocking (the default).
//   npm run bench [-- --models DIR] [-- --requests N] [-- --first N] [-- --no-int8] [-- --out DIR]
// When the models have no int8 variants, the benchmark makes them in its copy under .bench with the
// exporter (training/export/int8.ts, calibrated on Fashion-MNIST training images). Without trained
// students in models/ it measures the test fixtures (seeded random weights) and says so. Writes
// edge.json (machine-readable, with each model's sha256) and edge.md (the tables) to --out (.bench).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import * as ort from "onnxruntime-node";
import { encode as encodePng } from "fast-png";
import { createHash } from "node:crypto";
import { type Manifest, type ModelEntry, parseManifest } from "../models/schema.ts";
import { exportInt8Variants } from "../training/export/index.ts";
import { decodeModel } from "../training/onnx/proto.ts";
import { bundleModels } from "../scripts/bundle-models.ts";
import { buildFixtureModels } from "../test/src/setup/fixtures.ts";
import { writeFileAtomic, writeJsonAtomic } from "../training/io/atomic.ts";
import { referenceInput, stats, timeRuns } from "./timing.ts";
import { wasmReference } from "./wasm-reference.ts";

const ROOT = resolve(import.meta.dirname, "..");
const OUT = join(ROOT, ".bench");
const WORK = join(OUT, "edge-worker");
const PORT = 8799;
const BASE = `http://127.0.0.1:${PORT}`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * The models to measure: the students of `dir` if it has any, else the fixtures written to .bench.
 * Either way they are copied into .bench with every student in the manifest's serve list, so the
 * benchmark's Worker serves them all (a deployment bundles only the default and its serve list) and
 * the benchmark never rewrites the shipped models/bundle.ts.
 */
async function chooseModels(): Promise<{ dir: string; students: ModelEntry[]; source: string }> {
  const dir = resolve(arg("models") ?? join(ROOT, "models"));
  const manifestPath = join(dir, "manifest.json");
  const fixtureDir = join(WORK, "models");
  rmSync(fixtureDir, { recursive: true, force: true });
  if (existsSync(manifestPath)) {
    const manifest = parseManifest(JSON.parse(readFileSync(manifestPath, "utf8")));
    const students = manifest.models.filter((m) => m.role === "student");
    if (students.length > 0) {
      for (const m of students) writeFileAtomic(join(fixtureDir, m.file), readFileSync(join(dir, m.file)));
      writeJsonAtomic(join(fixtureDir, "manifest.json"), {
        ...manifest,
        models: students,
        serve: students.map((m) => m.name).filter((n) => n !== manifest.defaultStudent),
      });
      const all = await withInt8(fixtureDir, students);
      return { dir: fixtureDir, students: all, source: relative(ROOT, dir) || "." };
    }
  }
  const { manifest, files } = await buildFixtureModels();
  for (const [name, bytes] of files) writeFileAtomic(join(fixtureDir, name), bytes);
  writeJsonAtomic(join(fixtureDir, "manifest.json"), manifest);
  return {
    dir: fixtureDir,
    students: manifest.models,
    source: "test fixtures (seeded random weights; no trained students in models/)",
  };
}

/**
 * The students plus an int8 variant of each fp32 one that has none, made in the copy by the exporter
 * (unless --no-int8, or when the data set to calibrate on is missing: then fp32 alone, said so).
 */
async function withInt8(dir: string, students: ModelEntry[]): Promise<ModelEntry[]> {
  const missing = students.filter(
    (m) =>
      !m.quantization && m.outputActivation !== "sigmoid" && !students.some((q) => q.quantization?.twin === m.name),
  );
  if (flag("no-int8") || missing.length === 0) return students;
  console.log(
    `bench: making int8 variants of ${missing.map((m) => m.name).join(", ")} in ${relative(ROOT, dir)} (the exporter; --no-int8 skips them)`,
  );
  try {
    const samples = Number(arg("accuracy-samples") ?? 2000);
    await exportInt8Variants(dir, {
      modelsDir: dir,
      accuracySamples: samples,
      log: (l) => console.log(`bench:   ${l}`),
    });
  } catch (err) {
    console.warn(`bench: no int8 variants: ${err instanceof Error ? err.message : String(err)}`);
    return students;
  }
  const manifest: Manifest = parseManifest(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
  const all = manifest.models.filter((m) => m.role === "student");
  writeJsonAtomic(join(dir, "manifest.json"), {
    ...manifest,
    serve: all.map((m) => m.name).filter((n) => n !== manifest.defaultStudent),
  });
  return all;
}

/** Convolutions in an ONNX file (Conv nodes; an int8 QDQ file keeps Conv between its Q/DQ pairs). */
function convolutions(bytes: Uint8Array): number {
  return decodeModel(bytes).nodes.filter(
    (n) => n.opType === "Conv" || n.opType === "ConvInteger" || n.opType === "QLinearConv",
  ).length;
}

/** A wrangler config and entry that run src/worker.ts over the chosen models' bundle. */
function writeWorker(modelsDir: string): string {
  bundleModels(modelsDir);
  mkdirSync(WORK, { recursive: true });
  const rel = (p: string) => {
    const r = relative(WORK, p).split("\\").join("/");
    return r.startsWith(".") ? r : `./${r}`;
  };
  writeFileSync(
    join(WORK, "entry.ts"),
    `import { manifestJson, modelFiles } from "${rel(join(modelsDir, "bundle.ts"))}";\nimport { createWorker } from "${rel(join(ROOT, "src/worker.ts"))}";\nexport default createWorker(manifestJson, modelFiles);\n`,
  );
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8")
    .replace(/^main = .*$/m, 'main = "entry.ts"')
    .replace(/^\[build\][\s\S]*?(?=^\[\[rules\]\])/m, "");
  const config = join(WORK, "wrangler.toml");
  writeFileSync(config, toml);
  return config;
}

/** wrangler dev processes still running, stopped if the benchmark exits early. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const dev of running) {
    try {
      process.kill(-dev.pid!, "SIGTERM");
    } catch {
      // already gone
    }
  }
});

function startDev(config: string, vars: Record<string, string> = {}): ChildProcess {
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
  const child = spawn(
    join(ROOT, "node_modules/.bin/wrangler"),
    ["dev", "--config", config, "--ip", "127.0.0.1", "--port", String(PORT), "--log-level", "error", ...varArgs],
    {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      stdio: ["ignore", "ignore", "inherit"],
      detached: true,
    },
  );
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

async function waitReady(timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if ((await fetch(`${BASE}/v2/health/live`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("wrangler dev did not come up");
}

interface Timed {
  ms: number;
  /** Server-Timing phases, ms (workerd's clock ticks in whole ms). */
  inferenceMs: number | undefined;
  totalMs: number | undefined;
  queueMs: number | undefined;
  loadMs: number | undefined;
}

const phase = (header: string, name: string) => {
  const m = new RegExp(`(?:^|,)\\s*${name};dur=([\\d.]+)`).exec(header);
  return m ? Number(m[1]) : undefined;
};

/**
 * Requests whose connection the server side closed before answering ("other side closed"), sent
 * again. wrangler dev's proxy drops kept-alive connections under concurrent load (workers-sdk
 * #14641); this bench measures speed, so it retries them and reports how many there were. The
 * load test (`npm run loadtest`) is where such drops are checked.
 */
let connectionDrops = 0;
const MAX_RETRIES = 2;

function isConnectionDrop(err: unknown): boolean {
  const code = (err as { cause?: { code?: string } })?.cause?.code;
  return err instanceof TypeError && (code === "UND_ERR_SOCKET" || code === "ECONNRESET");
}

async function timedRequest(path: string, init: RequestInit, retries = MAX_RETRIES): Promise<Timed> {
  const t = performance.now();
  let res: Response;
  try {
    res = await fetch(`${BASE}${path}`, init);
    await res.arrayBuffer();
  } catch (err) {
    if (retries === 0 || !isConnectionDrop(err)) throw err;
    connectionDrops++;
    return timedRequest(path, init, retries - 1);
  }
  const ms = performance.now() - t;
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  const header = res.headers.get("Server-Timing") ?? "";
  return {
    ms,
    inferenceMs: phase(header, "inference"),
    totalMs: phase(header, "total"),
    queueMs: phase(header, "queue"),
    loadMs: phase(header, "load"),
  };
}

/** `total` requests from `concurrency` loops, each waiting for its answer before the next. */
async function load(path: string, init: () => RequestInit, concurrency: number, total: number): Promise<Timed[]> {
  const out: Timed[] = [];
  let issued = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < total) {
        issued++;
        out.push(await timedRequest(path, init()));
      }
    }),
  );
  return out;
}

function inferBody(m: ModelEntry): string {
  const dims = [1, ...m.input.shape.slice(1)];
  const size = dims.reduce((a, b) => a * b, 1);
  return JSON.stringify({
    inputs: [
      { name: m.input.name, shape: dims, datatype: "FP32", data: Array.from({ length: size }, (_, i) => Math.sin(i)) },
    ],
  });
}

/** A 64x64 RGB upload: the classify path adds decoding and resizing to the inference. */
function examplePng(): Uint8Array<ArrayBuffer> {
  const w = 64;
  const h = 64;
  const data = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 31) % 256);
  return new Uint8Array(encodePng({ width: w, height: h, channels: 3, depth: 8, data }));
}

/** onnxruntime-node, natively on one thread: the reference the Worker is compared with. */
async function nodeReference(dir: string, m: ModelEntry, runs: number) {
  const session = await ort.InferenceSession.create(readFileSync(join(dir, m.file)), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const { dims, data } = referenceInput(m.input.shape);
  const input = new ort.Tensor("float32", data, dims);
  const times = await timeRuns(() => session.run({ [m.input.name]: input }), 20, runs);
  await session.release();
  return times;
}

function bundleSize(config: string): { rawBytes: number; gzipBytes: number } {
  const outdir = join(WORK, "dist");
  rmSync(outdir, { recursive: true, force: true });
  const r = spawnSyncChecked(join(ROOT, "node_modules/.bin/wrangler"), [
    "deploy",
    "--dry-run",
    "--config",
    config,
    "--outdir",
    outdir,
  ]);
  if (!r) throw new Error("wrangler deploy --dry-run failed");
  let rawBytes = 0;
  let gzipBytes = 0;
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (!f.endsWith(".map") && f !== "README.md") {
        const bytes = readFileSync(p);
        rawBytes += bytes.length;
        gzipBytes += gzipSync(bytes, { level: 9 }).length;
      }
    }
  };
  walk(outdir);
  return { rawBytes, gzipBytes };
}

function spawnSyncChecked(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return r.status === 0;
}

/** Targets for the default student: in-Worker over native fp32, the Worker's overhead, a fresh isolate's first requests over steady. */
const TARGETS = { inWorkerOverNode: 2.5, overheadMs: 1.5, firstRequestsOverSteady: 2 };

interface ModelResult {
  model: string;
  version: string;
  precision: "fp32" | "int8";
  /** The fp32 model the onnxruntime-node figure runs: itself, or an int8 model's twin. */
  fp32Twin: string;
  sha256: string;
  bytes: number;
  params: number;
  macs: number;
  convolutions: number;
  /** The model's first request in the isolate (the first of all also starts onnxruntime-web). */
  coldStart: { clientMs: number; loadMs: number | undefined; includesOrtInit: boolean };
  inferC1: ReturnType<typeof stats>;
  inferC16: ReturnType<typeof stats>;
  classifyPngC1: ReturnType<typeof stats>;
  /** Server-Timing `inference` at c=1. */
  inWorkerInference: ReturnType<typeof stats>;
  /** Server-Timing `queue` + `inference` of each c=1 request, in order (the steady state a fresh isolate is compared with). */
  inWorkerSeries: number[];
  /** Server-Timing `total` minus `inference` at c=1: JSON, routing, the queue, serializing. */
  workerOverhead: ReturnType<typeof stats>;
  onnxruntimeNodeFp32: ReturnType<typeof stats>;
  /** In-Worker mean over onnxruntime-node's mean on the fp32 twin. */
  inWorkerOverNode: number;
  /** The model itself in onnxruntime-web's WASM, in Node (no Worker), one thread. */
  onnxruntimeWebInNode: ReturnType<typeof stats>;
  /** The same with explicit bounds checks on every WebAssembly memory access, as workerd compiles it (wasm-reference.ts). */
  onnxruntimeWebInNodeBoundsChecked: ReturnType<typeof stats>;
  /** onnxruntime-web in Node over onnxruntime-node (WASM's share of the ratio), and the in-Worker mean over onnxruntime-web in Node (the Worker's). */
  wasmOverNode: number;
  inWorkerOverWasm: number;
  /** Explicit bounds checks over the default (the part of inWorkerOverWasm that workerd's V8 setup explains). */
  boundsChecksOverWasm: number;
}

/** The warm-up settings a fresh isolate is measured with: the Worker's vars, and how the tables name them. */
const FRESH_SETTINGS: { setting: string; vars: Record<string, string> }[] = [
  { setting: "warm-up off (WARMUP_RUNS=0)", vars: { WARMUP_RUNS: "0" } },
  { setting: "background warm-up (WARMUP_MODE=background)", vars: { WARMUP_MODE: "background" } },
  { setting: "blocking warm-up (default)", vars: {} },
];

interface FreshIsolate {
  setting: string;
  vars: Record<string, string>;
  /** Server-Timing of the first requests, in order (request 1 also loads the session and starts ORT). */
  requests: { clientMs: number; inferenceMs?: number; queueMs?: number; totalMs?: number; loadMs?: number }[];
  /**
   * Requests 2..N: mean and worst in-Worker time (queue + inference); the mean over the steady mean,
   * the worst over the steady mean, and the worst over a steady isolate's own worst of as many
   * consecutive requests (like for like: a 1 ms clock and the odd GC pause give a warm isolate's
   * worst too).
   */
  after1: {
    meanMs: number;
    worstMs: number;
    meanOverSteady: number;
    worstOverSteady: number;
    worstOverSteadyWorst: number;
  };
}

/** Steady state of the default student at c=1: its in-Worker mean, and the median over windows of `n` consecutive requests of each window's worst. */
interface Steady {
  meanMs: number;
  windowWorstMs: number;
}

function steadyState(times: number[], n: number): Steady {
  const worsts: number[] = [];
  for (let i = 0; i + n <= times.length; i++) worsts.push(Math.max(...times.slice(i, i + n)));
  return { meanMs: times.reduce((a, b) => a + b, 0) / times.length, windowWorstMs: stats(worsts).median };
}

/** c=1 requests after the first, timed by the Worker. */
const inWorker = (t: Timed) => (t.inferenceMs ?? 0) + (t.queueMs ?? 0);

async function freshIsolate(
  config: string,
  m: ModelEntry,
  init: () => RequestInit,
  count: number,
  { setting, vars }: (typeof FRESH_SETTINGS)[number],
  steady: Steady,
): Promise<FreshIsolate> {
  const dev = startDev(config, vars);
  try {
    await waitReady();
    const requests: Timed[] = [];
    for (let i = 0; i < count; i++) requests.push(await timedRequest(`/v2/models/${m.name}/infer`, init()));
    const rest = requests.slice(1).map(inWorker);
    const worst = Math.max(...rest);
    const mean = rest.reduce((a, b) => a + b, 0) / Math.max(1, rest.length);
    return {
      setting,
      vars,
      requests: requests.map((t) => ({
        clientMs: round(t.ms),
        inferenceMs: t.inferenceMs,
        queueMs: t.queueMs,
        totalMs: t.totalMs,
        loadMs: t.loadMs,
      })),
      after1: {
        meanMs: round(mean),
        worstMs: worst,
        meanOverSteady: round(mean / steady.meanMs),
        worstOverSteady: round(worst / steady.meanMs),
        worstOverSteadyWorst: round(worst / steady.windowWorstMs),
      },
    };
  } finally {
    await stopDev(dev);
  }
}

async function stopDev(dev: ChildProcess): Promise<void> {
  if (dev.exitCode !== null || dev.signalCode !== null) return;
  const exited = new Promise<void>((r) => dev.once("exit", () => r()));
  try {
    process.kill(-dev.pid!, "SIGTERM");
  } catch {
    return;
  }
  await exited;
}

async function main(): Promise<void> {
  const requests = Number(arg("requests") ?? 400);
  const first = Number(arg("first") ?? 20);
  const out = resolve(arg("out") ?? OUT);
  const { dir, students, source } = await chooseModels();
  const config = writeWorker(dir);
  console.log(`bench: ${students.length} student(s) from ${source}`);
  const size = bundleSize(config);
  console.log(`bench: bundle ${round(size.rawBytes / 2 ** 20)} MiB raw, ${round(size.gzipBytes / 2 ** 20)} MiB gzip`);
  const manifest = parseManifest(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")));
  const defaultStudent = students.find((m) => m.name === manifest.defaultStudent) ?? students[0]!;
  const inits = new Map(
    students.map((m) => {
      const body = inferBody(m);
      return [m.name, () => ({ method: "POST", headers: { "Content-Type": "application/json" }, body })] as const;
    }),
  );

  const dev = startDev(config);
  const results: ModelResult[] = [];
  try {
    await waitReady();
    // First requests: the isolate's first inference pays ORT's WASM start-up and the session; later
    // models only their session. Then every model is warmed up before any is measured, so the JIT's
    // warm-up does not land on whichever model comes first.
    const cold = new Map<string, Timed>();
    for (const m of students) cold.set(m.name, await timedRequest(`/v2/models/${m.name}/infer`, inits.get(m.name)!()));
    for (const m of students) await load(`/v2/models/${m.name}/infer`, inits.get(m.name)!, 1, 50);
    const nodeTimes = new Map<string, ReturnType<typeof stats>>();
    for (const m of students) {
      const init = inits.get(m.name)!;
      const c1 = await load(`/v2/models/${m.name}/infer`, init, 1, requests);
      const c16 = await load(`/v2/models/${m.name}/infer`, init, 16, requests * 2);
      const png = examplePng();
      const classify = await load(
        `/v1/models/${m.name}/classify`,
        () => ({ method: "POST", headers: { "Content-Type": "image/png" }, body: png }),
        1,
        requests,
      );
      const twin = students.find((t) => t.name === (m.quantization?.twin ?? m.name)) ?? m;
      if (!nodeTimes.has(twin.name)) nodeTimes.set(twin.name, await nodeReference(dir, twin, requests));
      const node = nodeTimes.get(twin.name)!;
      const web = wasmReference(join(dir, m.file), m.input, requests, false);
      const checked = wasmReference(join(dir, m.file), m.input, requests, true);
      const timed = c1.filter((t) => t.inferenceMs !== undefined && t.totalMs !== undefined);
      const inference = stats(timed.map((t) => t.inferenceMs!));
      const bytes = new Uint8Array(readFileSync(join(dir, m.file)));
      const r: ModelResult = {
        model: m.name,
        version: m.version,
        precision: m.quantization ? "int8" : "fp32",
        fp32Twin: twin.name,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        bytes: bytes.length,
        params: m.metrics.params,
        macs: m.metrics.macs,
        convolutions: convolutions(bytes),
        coldStart: {
          clientMs: round(cold.get(m.name)!.ms),
          loadMs: cold.get(m.name)!.loadMs,
          includesOrtInit: m === students[0],
        },
        inferC1: stats(c1.map((t) => t.ms)),
        inferC16: stats(c16.map((t) => t.ms)),
        classifyPngC1: stats(classify.map((t) => t.ms)),
        inWorkerInference: inference,
        inWorkerSeries: timed.map(inWorker),
        workerOverhead: stats(timed.map((t) => t.totalMs! - t.inferenceMs!)),
        onnxruntimeNodeFp32: node,
        inWorkerOverNode: round(inference.mean / node.mean),
        onnxruntimeWebInNode: web,
        onnxruntimeWebInNodeBoundsChecked: checked,
        wasmOverNode: round(web.mean / node.mean),
        inWorkerOverWasm: round(inference.mean / web.mean),
        boundsChecksOverWasm: round(checked.mean / web.mean),
      };
      if (r.sha256 !== m.sha256)
        throw new Error(`${m.file} has sha256 ${r.sha256}, its manifest entry says ${m.sha256}`);
      results.push(r);
      console.log(
        `bench: ${m.name}: c1 median ${round(r.inferC1.median)} ms, in-Worker ${round(inference.mean)} ms, node fp32 ${round(node.mean, 3)} ms (x${r.inWorkerOverNode}), ort-web in Node ${round(web.mean, 3)} ms (bounds-checked ${round(checked.mean, 3)} ms), overhead ${round(r.workerOverhead.mean)} ms`,
      );
    }
  } finally {
    await stopDev(dev);
  }

  // A fresh isolate (a new wrangler dev) per setting: its first requests at c=1, back to back, the
  // harshest case for warm-up (each request lands while a warm-up run may be going).
  const steady = steadyState(results.find((r) => r.model === defaultStudent.name)!.inWorkerSeries, first - 1);
  const fresh: FreshIsolate[] = [];
  for (const setting of FRESH_SETTINGS) {
    const f = await freshIsolate(config, defaultStudent, inits.get(defaultStudent.name)!, first, setting, steady);
    fresh.push(f);
    console.log(
      `bench: fresh isolate, ${f.setting}: request 1 ${f.requests[0]!.clientMs} ms, requests 2-${first} in-Worker mean ${f.after1.meanMs} ms (${f.after1.meanOverSteady}x steady ${round(steady.meanMs)} ms), worst ${f.after1.worstMs} ms (${f.after1.worstOverSteadyWorst}x a steady isolate's worst of ${first - 1}, ${steady.windowWorstMs} ms)`,
    );
  }

  const def = results.find((r) => r.model === defaultStudent.name)!;
  const warmOn = fresh.find((f) => Object.keys(f.vars).length === 0)!;
  const report = {
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    source,
    requestsPerRun: requests,
    // Other work on the machine inflates every figure: the load average says how busy it was.
    machine: { cpus: cpus().length, node: process.version, loadAverage1m: round(loadavg()[0]!) },
    bundle: size,
    connectionDrops,
    defaultStudent: defaultStudent.name,
    targets: {
      inWorkerOverNode: {
        target: TARGETS.inWorkerOverNode,
        value: def.inWorkerOverNode,
        met: def.inWorkerOverNode <= TARGETS.inWorkerOverNode,
      },
      overheadMs: {
        target: TARGETS.overheadMs,
        value: round(def.workerOverhead.mean),
        met: def.workerOverhead.mean <= TARGETS.overheadMs,
      },
      // Both the typical and the worst first request: mean over mean, worst over worst.
      firstRequestsMeanOverSteady: {
        target: TARGETS.firstRequestsOverSteady,
        value: warmOn.after1.meanOverSteady,
        met: warmOn.after1.meanOverSteady <= TARGETS.firstRequestsOverSteady,
      },
      firstRequestsWorstOverSteadyWorst: {
        target: TARGETS.firstRequestsOverSteady,
        value: warmOn.after1.worstOverSteadyWorst,
        met: warmOn.after1.worstOverSteadyWorst <= TARGETS.firstRequestsOverSteady,
      },
    },
    models: results,
    freshIsolate: {
      model: defaultStudent.name,
      steadyInWorkerMs: round(steady.meanMs),
      steadyWindowWorstMs: steady.windowWorstMs,
      runs: fresh,
    },
  };
  mkdirSync(out, { recursive: true });
  writeJsonAtomic(join(out, "edge.json"), report);
  writeFileAtomic(join(out, "edge.md"), markdown(report));
  console.log(markdown(report));
  console.log(`bench: wrote ${relative(ROOT, join(out, "edge.json")) || join(out, "edge.json")} and edge.md`);
}

type Report = {
  date: string;
  command: string;
  source: string;
  bundle: { rawBytes: number; gzipBytes: number };
  /** Requests sent again because the dev proxy closed their connection (timedRequest). */
  connectionDrops: number;
  requestsPerRun: number;
  machine: { cpus: number; node: string; loadAverage1m: number };
  defaultStudent: string;
  targets: Record<string, { target: number; value: number; met: boolean }>;
  models: ModelResult[];
  freshIsolate: { model: string; steadyInWorkerMs: number; steadyWindowWorstMs: number; runs: FreshIsolate[] };
};

function markdown(r: Report): string {
  const ms = (x: number) => round(x, 2).toFixed(2);
  const mac = (x: number) => `${(x / 1e6).toFixed(1)}M`;
  const n = r.freshIsolate.runs[0]!.requests.length;
  const cell = (t: FreshIsolate["requests"][number]) =>
    `${(t.inferenceMs ?? 0) + (t.queueMs ?? 0)}${t.queueMs ? ` (${t.queueMs} queued)` : ""}`;
  const lines = [
    `Measured with \`${r.command}\`: models ${r.source}; ${r.requestsPerRun} requests per run (c16: ${2 * r.requestsPerRun}); ${r.machine.cpus} CPUs (load average ${r.machine.loadAverage1m} at the end); Node ${r.machine.node}; ${r.date.slice(0, 10)}.`,
    `Bundle: ${(r.bundle.rawBytes / 2 ** 20).toFixed(2)} MiB raw, ${(r.bundle.gzipBytes / 2 ** 20).toFixed(2)} MiB gzip (every student measured is in it; a deployment bundles its serve list). Requests sent again after wrangler dev's proxy closed their connection: ${r.connectionDrops}.`,
    "",
    "| model | precision | MACs | convs | in-Worker mean (ms) | onnxruntime-node fp32, 1 thread (ms) | ratio | onnxruntime-web in Node (ms): / node, in-Worker / it | bounds-checked (ms): / unchecked | Worker overhead, c=1 (ms) | cold start (ms) | infer c=1 median / p99 (ms) | infer c=16 median (ms) | classify PNG c=1 median (ms) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...r.models.map(
      (m) =>
        `| ${m.model}${m.model === r.defaultStudent ? " (default)" : ""} | ${m.precision} | ${mac(m.macs)} | ${m.convolutions} | ${ms(m.inWorkerInference.mean)} | ${round(m.onnxruntimeNodeFp32.mean, 3).toFixed(3)}${m.fp32Twin !== m.model ? ` (${m.fp32Twin})` : ""} | ${m.inWorkerOverNode.toFixed(2)}x | ${round(m.onnxruntimeWebInNode.mean, 3).toFixed(3)}: ${m.wasmOverNode.toFixed(2)}x, ${m.inWorkerOverWasm.toFixed(2)}x | ${round(m.onnxruntimeWebInNodeBoundsChecked.mean, 3).toFixed(3)}: ${m.boundsChecksOverWasm.toFixed(2)}x | ${ms(m.workerOverhead.mean)} | ${ms(m.coldStart.clientMs)}${m.coldStart.includesOrtInit ? " (ORT init)" : ""} | ${ms(m.inferC1.median)} / ${ms(m.inferC1.p99)} | ${ms(m.inferC16.median)} | ${ms(m.classifyPngC1.median)} |`,
    ),
    "",
    `Targets for the default student (${r.defaultStudent}): ${Object.entries(r.targets)
      .map(([k, t]) => `${k} ${t.value} (target <= ${t.target}: ${t.met ? "met" : "NOT met"})`)
      .join("; ")}.`,
    "",
    `First ${n} requests of a fresh isolate (${r.freshIsolate.model}, c=1 back to back; in-Worker ms = Server-Timing queue + inference; request 1 also loads the session, which starts onnxruntime-web and includes a blocking warm-up, and its client time is given; steady state: mean ${r.freshIsolate.steadyInWorkerMs} ms, worst of ${n - 1} consecutive requests ${r.freshIsolate.steadyWindowWorstMs} ms, median over windows):`,
    "",
    `| request | 1: client (load) | ${Array.from({ length: n - 1 }, (_, i) => i + 2).join(" | ")} | 2-${n} mean (/ steady mean) | 2-${n} worst (/ steady worst of ${n - 1}; / steady mean) |`,
    `|---|${"---|".repeat(n + 2)}`,
    ...r.freshIsolate.runs.map(
      (f) =>
        `| ${f.setting} | ${ms(f.requests[0]!.clientMs)} (${f.requests[0]!.loadMs ?? "-"}) | ${f.requests.slice(1).map(cell).join(" | ")} | ${f.after1.meanMs} (${f.after1.meanOverSteady}x) | ${f.after1.worstMs} (${f.after1.worstOverSteadyWorst}x; ${f.after1.worstOverSteady}x) |`,
    ),
    "",
    "In-Worker times are the Worker's own Server-Timing phases; workerd's clock ticks in whole milliseconds, hence means over many requests. The ratio is the in-Worker mean over onnxruntime-node's mean on the fp32 model (an int8 model's fp32 twin); onnxruntime-web in Node runs the model itself in the Worker's WASM engine outside the Worker, so the ratio is its two columns' product: what WASM costs against native code, and what the Worker adds. Bounds-checked is the same run with `--wasm-enforce-bounds-checks`: workerd never installs V8's WebAssembly trap handler, so its compiled WASM checks the bounds of every memory access, which Node's does not; this column is the part of the Worker's share that this explains. Overhead is Server-Timing `total` minus `inference` at c=1: parsing the JSON body, routing, waiting for the run queue, serializing the answer. Cold start is the model's first request: it loads the session (digest check, session creation, the first model's also starts onnxruntime-web) and, with the default blocking warm-up, runs the warm-up.",
    "",
  ];
  return lines.join("\n");
}

await main();
