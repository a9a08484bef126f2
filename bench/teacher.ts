// `npm run bench:teacher` (a benchmark, not a test): the teacher host's dynamic batching on this CPU.
// Starts two real hosts on the shipped teacher (models/manifest.json's teacher): batching off
// (--max-batch 1) and on (the defaults), and for each concurrency drives one host, then the other,
// with a closed loop of that many clients sending Fashion-MNIST test images as Open Inference
// Protocol requests over keep-alive connections: throughput, p50 and p99 of the client's latency,
// and from the host's own /metrics the mean batch size and the share of the time spent in
// onnxruntime runs. Beside it, onnxruntime-node's own time per image at batch 1 and 32 on the same
// file: what batching can save in the runtime on this CPU, whatever the host does.
//   npm run bench:teacher [-- --manifest FILE] [--seconds N] [--rounds N] [--concurrency 1,8,32] [--out DIR]
// Rounds alternate the configurations again; each cell reports the median round. Writes
// teacher-batching.json and teacher-batching.md to --out (.bench). The client shares the machine's
// cores with the host: on 2 cores its own work is part of what is measured.
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { cpus, loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { type ModelEntry, parseManifest } from "../models/schema.ts";
import { type TeacherProcess, launchTeacher } from "../teacher/launch.ts";
import { loadFashionMnist } from "../training/data/fashion-mnist.ts";
import { writeFileAtomic, writeJsonAtomic } from "../training/io/atomic.ts";

const ROOT = resolve(import.meta.dirname, "..");
const USAGE =
  "usage: npm run bench:teacher -- [--manifest FILE] [--seconds N] [--rounds N] [--concurrency 1,8,32] [--out DIR]";

function fail(message: string): never {
  console.error(`bench:teacher: ${message}\n${USAGE}`);
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        manifest: { type: "string", default: join(ROOT, "models", "manifest.json") },
        seconds: { type: "string", default: "8" },
        rounds: { type: "string", default: "2" },
        concurrency: { type: "string", default: "1,8,32" },
        out: { type: "string", default: join(ROOT, ".bench") },
      },
      strict: true,
    });
  } catch (err) {
    fail((err as Error).message);
  }
})();
const positive = (raw: string, what: string) => {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= 10_000)) fail(`${what} must be an integer from 1 to 10000, got "${raw}"`);
  return n;
};
const SECONDS = positive(values.seconds, "--seconds");
const ROUNDS = positive(values.rounds, "--rounds");
const LEVELS = values.concurrency.split(",").map((c) => positive(c.trim(), "--concurrency"));
const CONFIGS = [
  { name: "off", args: ["--max-batch", "1"] },
  { name: "on", args: [] as string[] },
] as const;
type ConfigName = (typeof CONFIGS)[number]["name"];

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function teacherEntry(manifestPath: string): ModelEntry {
  let manifest: ReturnType<typeof parseManifest>;
  try {
    manifest = parseManifest(JSON.parse(readFileSync(manifestPath, "utf8")));
  } catch (err) {
    fail(`cannot read ${manifestPath}: ${(err as Error).message}`);
  }
  const teachers = manifest.models.filter((m) => m.role === "teacher");
  if (teachers.length !== 1) fail(`${manifestPath} has ${teachers.length} teachers; the benchmark needs exactly one`);
  return teachers[0]!;
}

/** Request bodies: Fashion-MNIST test images, normalized as the model's manifest entry says. */
function bodies(entry: ModelEntry, count: number): Buffer[] {
  const { test } = loadFashionMnist();
  const { mean, std } = entry.normalization;
  const pixels = test.height * test.width;
  return Array.from({ length: count }, (_, i) => {
    const data = Array.from(test.images.subarray(i * pixels, (i + 1) * pixels), (p) => (p / 255 - mean[0]!) / std[0]!);
    return Buffer.from(
      JSON.stringify({
        inputs: [{ name: entry.input.name, shape: [1, 1, test.height, test.width], datatype: "FP32", data }],
      }),
    );
  });
}

interface Load {
  requests: number;
  seconds: number;
  latenciesMs: number[];
  errors: number;
}

/** `clients` loops, each sending its next request when the last is answered, for `seconds`. */
async function drive(
  url: string,
  path: string,
  token: string,
  payloads: Buffer[],
  clients: number,
  seconds: number,
): Promise<Load> {
  const { hostname, port } = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const latenciesMs: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  const one = (body: Buffer) =>
    new Promise<number>((done) => {
      const req = request(
        {
          hostname,
          port,
          path,
          method: "POST",
          agent,
          headers: {
            "Content-Type": "application/json",
            "Content-Length": body.length,
            Authorization: `Bearer ${token}`,
          },
        },
        (res) => {
          res.resume();
          res.on("end", () => done(res.statusCode ?? 0));
        },
      );
      req.on("error", () => done(0));
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        const status = await one(payloads[next++ % payloads.length]!);
        if (status === 200) latenciesMs.push(performance.now() - t);
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return { requests: latenciesMs.length, seconds: elapsed, latenciesMs, errors };
}

/** The sums the host's /metrics keeps, for the difference over a run. */
async function hostCounters(
  url: string,
  token: string,
): Promise<{ runs: number; images: number; inferenceSeconds: number }> {
  const text = await (await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  return {
    runs: read("teacher_batch_size_count"),
    images: read("teacher_batch_size_sum"),
    inferenceSeconds: read("teacher_inference_duration_seconds_sum"),
  };
}

interface Cell {
  config: ConfigName;
  concurrency: number;
  round: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanBatch: number;
  /** Share of the wall time the host spent inside onnxruntime runs. */
  runtimeBusy: number;
  errors: number;
}

/** onnxruntime-node alone on the file, default session options as the host uses: ms per image at each batch size. */
async function runtimeAlone(file: string, sizes: number[]): Promise<Record<number, number>> {
  const session = await ort.InferenceSession.create(readFileSync(file), {
    executionProviders: ["cpu"],
    graphOptimizationLevel: "all",
  });
  const out: Record<number, number> = {};
  for (const n of sizes) {
    const x = new ort.Tensor("float32", new Float32Array(n * 784).fill(0.1), [n, 1, 28, 28]);
    for (let i = 0; i < 5; i++) await session.run({ input: x });
    const reps = Math.max(20, Math.round(640 / n));
    const t = performance.now();
    for (let i = 0; i < reps; i++) await session.run({ input: x });
    out[n] = round((performance.now() - t) / reps / n, 3);
  }
  await session.release();
  return out;
}

const entry = teacherEntry(resolve(values.manifest));
const modelFile = join(dirname(resolve(values.manifest)), entry.file);
const token = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
const payloads = bodies(entry, 256);
const path = `/v2/models/${entry.name}/infer`;
console.log(
  `bench:teacher: ${entry.name} (${entry.file}, sha256 ${entry.sha256.slice(0, 12)}…), ${SECONDS} s per cell, ${ROUNDS} round(s), c=${LEVELS.join(",")}`,
);

const hosts = new Map<ConfigName, TeacherProcess>();
const cells: Cell[] = [];
try {
  for (const c of CONFIGS) {
    const h = await launchTeacher({
      args: [
        "--manifest",
        resolve(values.manifest),
        "--port",
        "0",
        "--provider",
        "cpu",
        "--max-queue",
        "1000",
        ...c.args,
      ],
      env: { TEACHER_TOKEN: token },
    });
    hosts.set(c.name, h);
  }
  for (let r = 1; r <= ROUNDS; r++) {
    for (const concurrency of LEVELS) {
      for (const c of CONFIGS) {
        const url = hosts.get(c.name)!.url;
        await drive(url, path, token, payloads, concurrency, 1); // warm-up, not counted
        const before = await hostCounters(url, token);
        const load = await drive(url, path, token, payloads, concurrency, SECONDS);
        const after = await hostCounters(url, token);
        const sorted = load.latenciesMs.sort((a, b) => a - b);
        const cell: Cell = {
          config: c.name,
          concurrency,
          round: r,
          requestsPerSecond: round(load.requests / load.seconds, 1),
          p50Ms: round(quantile(sorted, 0.5)),
          p99Ms: round(quantile(sorted, 0.99)),
          meanBatch: round((after.images - before.images) / (after.runs - before.runs)),
          runtimeBusy: round((after.inferenceSeconds - before.inferenceSeconds) / load.seconds, 3),
          errors: load.errors,
        };
        cells.push(cell);
        console.log(
          `round ${r} c=${concurrency} batching ${c.name}: ${cell.requestsPerSecond} req/s, p50 ${cell.p50Ms} ms, p99 ${cell.p99Ms} ms, mean batch ${cell.meanBatch}, onnxruntime busy ${Math.round(cell.runtimeBusy * 100)}%${cell.errors ? `, ${cell.errors} errors` : ""}`,
        );
      }
    }
  }
} finally {
  await Promise.all([...hosts.values()].map((h) => h.stop()));
}
const runtimeMsPerImage = await runtimeAlone(modelFile, [1, 8, 32]);

/** Per concurrency and configuration, the round with the median throughput. */
const table = LEVELS.flatMap((concurrency) =>
  CONFIGS.map((c) => {
    const rounds = cells.filter((x) => x.concurrency === concurrency && x.config === c.name);
    const mid = median(rounds.map((x) => x.requestsPerSecond));
    return rounds.find((x) => x.requestsPerSecond === mid)!;
  }),
);
const at = (config: ConfigName, c: number) => table.find((x) => x.config === config && x.concurrency === c)!;
const top = Math.max(...LEVELS);
const gain = round(at("on", top).requestsPerSecond / at("off", top).requestsPerSecond);
const p99Ratio = round(at("on", top).p99Ms / at("off", top).p99Ms);
const command = `npm run bench:teacher -- ${process.argv.slice(2).join(" ")}`.trim();
const result = {
  command,
  date: new Date().toISOString(),
  model: { name: entry.name, file: entry.file, sha256: entry.sha256, version: entry.version },
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, loadavg: loadavg().map((x) => round(x)) },
  seconds: SECONDS,
  rounds: ROUNDS,
  configs: Object.fromEntries(
    CONFIGS.map((c) => [c.name, c.args.join(" ") || "defaults (--max-batch 32 --batch-window-ms 2)"]),
  ),
  table,
  cells,
  runtimeMsPerImage,
  atTop: {
    concurrency: top,
    throughputGain: gain,
    p99Ratio,
    target: "throughput >= 2x, p99 <= 1.5x",
    met: gain >= 2 && p99Ratio <= 1.5,
  },
};
const md = [
  `| concurrency | batching | req/s | p50 (ms) | p99 (ms) | mean batch | onnxruntime busy |`,
  `|---:|---|---:|---:|---:|---:|---:|`,
  ...table.map(
    (x) =>
      `| ${x.concurrency} | ${x.config} | ${x.requestsPerSecond} | ${x.p50Ms} | ${x.p99Ms} | ${x.meanBatch} | ${Math.round(x.runtimeBusy * 100)}% |`,
  ),
  ``,
  `At c=${top}: batching on gives ${gain}x the throughput of batching off, p99 ${p99Ratio}x (target: >= 2x, p99 <= 1.5x: ${result.atTop.met ? "met" : "missed"}).`,
  `onnxruntime-node alone on ${entry.file}: ${Object.entries(runtimeMsPerImage)
    .map(([n, ms]) => `${ms} ms per image at batch ${n}`)
    .join(", ")}.`,
  `Measured by \`${command}\` on ${result.date.slice(0, 10)}, ${entry.name} ${entry.version} (${entry.file}), ${result.machine.cpus} cores (${result.machine.cpu}), load average ${result.machine.loadavg.join(" ")} at the end.`,
].join("\n");
const outDir = resolve(values.out);
writeJsonAtomic(join(outDir, "teacher-batching.json"), result);
writeFileAtomic(join(outDir, "teacher-batching.md"), `${md}\n`);
console.log(`\n${md}\n\nwrote ${join(outDir, "teacher-batching.json")} and teacher-batching.md`);
