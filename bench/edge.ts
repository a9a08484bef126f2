// Edge benchmark (not a test): for each student, request latency through `wrangler dev` over loopback
// at concurrency 1 and 16, the Worker's own inference time (its Server-Timing header), the same model
// in onnxruntime-node for reference, the bundle size (raw and gzip) and the first request's latency.
//   npm run bench [-- --models DIR] [-- --requests N]
// Without trained students in models/ it measures the test fixtures (seeded random weights) and
// says so. Writes .bench/edge.json and .bench/edge.md.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import * as ort from "onnxruntime-node";
import { encode as encodePng } from "fast-png";
import { type ModelEntry, parseManifest } from "../models/schema.ts";
import { bundleModels } from "../scripts/bundle-models.ts";
import { buildFixtureModels } from "../test/src/setup/fixtures.ts";
import { writeFileAtomic, writeJsonAtomic } from "../training/io/atomic.ts";

const ROOT = resolve(import.meta.dirname, "..");
const OUT = join(ROOT, ".bench");
const WORK = join(OUT, "edge-worker");
const PORT = 8799;
const BASE = `http://127.0.0.1:${PORT}`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), p99: quantile(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), n: s.length };
};
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
      writeJsonAtomic(join(fixtureDir, "manifest.json"), { ...manifest, serve: students.map((m) => m.name).filter((n) => n !== manifest.defaultStudent) });
      return { dir: fixtureDir, students, source: relative(ROOT, dir) || "." };
    }
  }
  const { manifest, files } = await buildFixtureModels();
  for (const [name, bytes] of files) writeFileAtomic(join(fixtureDir, name), bytes);
  writeJsonAtomic(join(fixtureDir, "manifest.json"), manifest);
  return { dir: fixtureDir, students: manifest.models, source: "test fixtures (seeded random weights; no trained students in models/)" };
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

function startDev(config: string): ChildProcess {
  const child = spawn(join(ROOT, "node_modules/.bin/wrangler"), ["dev", "--config", config, "--ip", "127.0.0.1", "--port", String(PORT), "--log-level", "error"], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "ignore", "inherit"],
    detached: true,
  });
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
  inferenceMs: number | undefined;
}

async function timedRequest(path: string, init: RequestInit): Promise<Timed> {
  const t = performance.now();
  const res = await fetch(`${BASE}${path}`, init);
  await res.arrayBuffer();
  const ms = performance.now() - t;
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  const m = /inference;dur=([\d.]+)/.exec(res.headers.get("Server-Timing") ?? "");
  return { ms, inferenceMs: m ? Number(m[1]) : undefined };
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
  return JSON.stringify({ inputs: [{ name: m.input.name, shape: dims, datatype: "FP32", data: Array.from({ length: size }, (_, i) => Math.sin(i)) }] });
}

/** A 64x64 RGB upload: the classify path adds decoding and resizing to the inference. */
function examplePng(): Uint8Array<ArrayBuffer> {
  const w = 64;
  const h = 64;
  const data = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 31) % 256);
  return new Uint8Array(encodePng({ width: w, height: h, channels: 3, depth: 8, data }));
}

async function nodeReference(dir: string, m: ModelEntry, runs: number) {
  const session = await ort.InferenceSession.create(readFileSync(join(dir, m.file)), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const dims = [1, ...m.input.shape.slice(1)];
  const input = new ort.Tensor("float32", Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)), dims);
  for (let i = 0; i < 20; i++) await session.run({ [m.input.name]: input });
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await session.run({ [m.input.name]: input });
    times.push(performance.now() - t);
  }
  await session.release();
  return stats(times);
}

function bundleSize(config: string): { rawBytes: number; gzipBytes: number } {
  const outdir = join(WORK, "dist");
  rmSync(outdir, { recursive: true, force: true });
  const r = spawnSyncChecked(join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--config", config, "--outdir", outdir]);
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
  const r = spawnSync(cmd, args, { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false" }, stdio: ["ignore", "ignore", "inherit"] });
  return r.status === 0;
}

async function main(): Promise<void> {
  const requests = Number(arg("requests") ?? 400);
  const { dir, students, source } = await chooseModels();
  const config = writeWorker(dir);
  console.log(`bench: ${students.length} student(s) from ${source}`);
  const size = bundleSize(config);
  console.log(`bench: bundle ${round(size.rawBytes / 2 ** 20)} MiB raw, ${round(size.gzipBytes / 2 ** 20)} MiB gzip`);

  const dev = startDev(config);
  const stop = () => {
    try {
      process.kill(-dev.pid!, "SIGTERM");
    } catch {
      // already gone
    }
  };
  process.on("exit", stop);
  try {
    await waitReady();
    const results = [];
    const inits = new Map(students.map((m) => {
      const body = inferBody(m);
      return [m.name, () => ({ method: "POST", headers: { "Content-Type": "application/json" }, body })] as const;
    }));
    // First requests: the isolate's first inference pays ORT's WASM start-up and the session; later
    // models only their session. Then every model is warmed up before any is measured, so the JIT's
    // warm-up does not land on whichever model comes first.
    const cold = new Map<string, Timed>();
    for (const m of students) cold.set(m.name, await timedRequest(`/v2/models/${m.name}/infer`, inits.get(m.name)!()));
    for (const m of students) await load(`/v2/models/${m.name}/infer`, inits.get(m.name)!, 1, 50);
    let first = true;
    for (const m of students) {
      const init = inits.get(m.name)!;
      const c1 = await load(`/v2/models/${m.name}/infer`, init, 1, requests);
      const c16 = await load(`/v2/models/${m.name}/infer`, init, 16, requests * 2);
      const png = examplePng();
      const classify = await load(`/v1/models/${m.name}/classify`, () => ({ method: "POST", headers: { "Content-Type": "image/png" }, body: png }), 1, requests);
      const inWorker = c1.map((t) => t.inferenceMs).filter((x): x is number => x !== undefined);
      const node = await nodeReference(dir, m, requests);
      const r = {
        model: m.name,
        version: m.version,
        params: m.metrics.params,
        macs: m.metrics.macs,
        firstRequestMs: round(cold.get(m.name)!.ms),
        firstRequestIncludesOrtInit: first,
        inferC1: stats(c1.map((t) => t.ms)),
        inferC16: stats(c16.map((t) => t.ms)),
        classifyPngC1: stats(classify.map((t) => t.ms)),
        inWorkerInference: stats(inWorker),
        onnxruntimeNode: node,
      };
      first = false;
      results.push(r);
      console.log(`bench: ${m.name}: c1 median ${round(r.inferC1.median)} ms, c16 median ${round(r.inferC16.median)} ms, in-Worker ${round(r.inWorkerInference.mean)} ms, node ${round(node.median, 3)} ms`);
    }
    const report = {
      date: new Date().toISOString(),
      source,
      requestsPerRun: requests,
      // Other work on the machine inflates every figure: the load average says how busy it was.
      machine: { cpus: cpus().length, node: process.version, loadAverage1m: round(loadavg()[0]!) },
      bundle: size,
      models: results,
    };
    mkdirSync(OUT, { recursive: true });
    writeJsonAtomic(join(OUT, "edge.json"), report);
    writeFileAtomic(join(OUT, "edge.md"), markdown(report));
    console.log(markdown(report));
  } finally {
    stop();
  }
}

function markdown(r: { date: string; source: string; bundle: { rawBytes: number; gzipBytes: number }; requestsPerRun: number; machine: { cpus: number; node: string; loadAverage1m: number }; models: { model: string; params: number; firstRequestMs: number; firstRequestIncludesOrtInit: boolean; inferC1: ReturnType<typeof stats>; inferC16: ReturnType<typeof stats>; classifyPngC1: ReturnType<typeof stats>; inWorkerInference: ReturnType<typeof stats>; onnxruntimeNode: ReturnType<typeof stats> }[] }): string {
  const ms = (x: number) => round(x, 2).toFixed(2);
  const lines = [
    `Models: ${r.source}. ${r.requestsPerRun} requests per run (c16: ${2 * r.requestsPerRun}), ${r.machine.cpus} CPUs (load average ${r.machine.loadAverage1m} at the end), Node ${r.machine.node}, ${r.date.slice(0, 10)}.`,
    `Bundle: ${(r.bundle.rawBytes / 2 ** 20).toFixed(2)} MiB raw, ${(r.bundle.gzipBytes / 2 ** 20).toFixed(2)} MiB gzip.`,
    "",
    "| model | params | first request (ms) | infer c=1 median / p99 (ms) | infer c=16 median / p99 (ms) | classify PNG c=1 median / p99 (ms) | in-Worker inference mean (ms) | onnxruntime-node median (ms) |",
    "|---|---|---|---|---|---|---|---|",
    ...r.models.map(
      (m) =>
        `| ${m.model} | ${m.params} | ${ms(m.firstRequestMs)}${m.firstRequestIncludesOrtInit ? " (ORT init)" : ""} | ${ms(m.inferC1.median)} / ${ms(m.inferC1.p99)} | ${ms(m.inferC16.median)} / ${ms(m.inferC16.p99)} | ${ms(m.classifyPngC1.median)} / ${ms(m.classifyPngC1.p99)} | ${ms(m.inWorkerInference.mean)} | ${round(m.onnxruntimeNode.median, 3).toFixed(3)} |`,
    ),
    "",
    "In-Worker inference is the Worker's own Server-Timing `inference` phase; workerd's clock ticks in whole milliseconds, hence the mean.",
    "",
  ];
  return lines.join("\n");
}

await main();
