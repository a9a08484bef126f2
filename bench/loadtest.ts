// `npm run loadtest`: the local system (teacher host + `wrangler dev`) under load, on loopback.
//   0. writes: 2,000 routed requests with measurements written straight to D1 (a wrangler config
//      without the queue), then 2,000 through the measurements queue: D1 write transactions per
//      1,000 requests for each, and rows lost (requests answered but missing from the report);
//   1. mixed: 20,000 requests at concurrency 32 over the endpoints (routed classify, compare, OIP
//      infer, named-model classify, health, report): no 5xx from the Worker, none dropped, p50/p99.
//      wrangler's dev proxy answers some requests itself with 503 "Your worker restarted
//      mid-request" (workers-sdk #14641): those are told apart by their body (the Worker's errors
//      are JSON {"error"}) and reported separately. The workerd process's memory (the Worker, the
//      local D1's SQLite and the runtime) and the dev proxy's are reported, not checked;
//   2. teacher faults: routed traffic while the teacher host is killed and later restarted: every
//      request answered, no 5xx, the student standing in, and the report counting the faults;
//   3. miniflare: the mixed phase again with the Worker under Miniflare's own HTTP server (no dev
//      proxy, bench/miniflare-stack.ts): 0 non-2xx answers, none dropped, and the Worker isolate's
//      own memory (V8 heap after GC plus onnxruntime-web's WebAssembly memory, read through the
//      inspector: bench/isolate-memory.ts) after the run within 10% of its level after warm-up; the
//      workerd process's memory and the local D1's size are reported beside it.
// Clients send CF-Connecting-IP (one address per simulated client; locally the header passes through,
// on Cloudflare's edge only Cloudflare sets it), so each has its own teacher allowance; /v1/compare
// uses API keys the run makes. `--phases writes` (or mixed, faults, miniflare, comma-separated) runs
// some only. Smaller runs for a smoke test: LOADTEST_REQUESTS, LOADTEST_FAULT_REQUESTS,
// LOADTEST_WRITE_REQUESTS, LOADTEST_WARMUP_CHUNK (requests per warm-up chunk, default 2,000).
// Results go to .bench/loadtest.json; the exit code is 1 when a check fails.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import autocannon, { type RequestSpec, type Result } from "autocannon";
import { encode } from "fast-png";
import { type ModelEntry, parseManifest } from "../models/schema.ts";
import { FASHION_MNIST_DIR, loadFashionMnist } from "../training/data/fashion-mnist.ts";
import { writeJsonAtomic } from "../training/io/atomic.ts";
import type { Report } from "../src/measurements/report.ts";
import { type Stack, applyLocalMigrations, startStack } from "../scripts/stack.ts";
import type { IsolateMemory } from "./isolate-memory.ts";
import { type MiniflareStack, startMiniflareStack } from "./miniflare-stack.ts";

const MIXED_REQUESTS = Number(process.env.LOADTEST_REQUESTS ?? 20_000);
const FAULT_REQUESTS = Number(process.env.LOADTEST_FAULT_REQUESTS ?? 4_000);
const WRITE_REQUESTS = Number(process.env.LOADTEST_WRITE_REQUESTS ?? 2_000);
const PHASES = ["writes", "mixed", "faults", "miniflare"] as const;
/**
 * API keys for /v1/compare: each has the allowance of one client (60 a minute). 3 requests in 20 are
 * compares: 64 keys keep up to ~400 req/s under the allowance, so none is refused with a 429.
 */
const COMPARE_KEYS = 64;
/** The configuration without the queue, next to wrangler.toml so that its relative paths hold. */
const DIRECT_CONFIG = ".loadtest-direct.wrangler.toml";
/** Warm-up goes on in chunks until workerd's memory grows less than WARMUP_SETTLED over one. */
const WARMUP_CHUNK = Number(process.env.LOADTEST_WARMUP_CHUNK ?? 2_000);
const WARMUP_MAX_CHUNKS = 8;
const WARMUP_SETTLED = 0.03;
/** Memory samples through the mixed run: ten of them (every 2,000 of the default 20,000). */
const SAMPLE_EVERY = Math.max(100, Math.round(MIXED_REQUESTS / 10));
const CONNECTIONS = 32;
const CLIENTS = 2_000;
const IMAGES = 256;
const PERSIST = ".wrangler/loadtest";
const MINIFLARE_PERSIST = ".wrangler/loadtest-miniflare";
const MINIFLARE_OUTDIR = ".bench/loadtest-worker";
/** The body of wrangler dev's own 503 (its proxy, not the Worker): workers-sdk #14641. */
const PROXY_RESTART = "Your worker restarted mid-request";
const TOKEN = randomBytes(24).toString("base64url");
const TEACHER_TOKEN = randomBytes(32).toString("base64url");

const phases = (() => {
  const { values } = parseArgs({ options: { phases: { type: "string" } } });
  const list = (values.phases ?? PHASES.join(",")).split(",").map((p) => p.trim());
  for (const p of list) {
    if (!(PHASES as readonly string[]).includes(p)) {
      console.error(`loadtest: unknown phase "${p}" in --phases (known: ${PHASES.join(", ")})`);
      process.exit(2);
    }
  }
  return new Set(list);
})();

const manifest = parseManifest(JSON.parse(readFileSync("models/manifest.json", "utf8")));
const student = manifest.models.find((m) => m.name === manifest.defaultStudent)!;
if (!student) throw new Error("models/manifest.json names no default student");

/** Test-set images as PNG files, and each as the student's input tensor for OIP requests. */
function images(entry: ModelEntry): { png: Buffer; tensor: number[] }[] {
  const { mean, std } = entry.normalization;
  const out: { png: Buffer; tensor: number[] }[] = [];
  if (existsSync(FASHION_MNIST_DIR)) {
    const test = loadFashionMnist().test;
    const size = test.height * test.width;
    for (let i = 0; i < IMAGES; i++) {
      const pixels = test.images.subarray(i * size, (i + 1) * size);
      out.push({
        png: Buffer.from(encode({ width: test.width, height: test.height, data: pixels, channels: 1, depth: 8 })),
        tensor: Array.from(pixels, (p) => (p / 255 - mean[0]!) / std[0]!),
      });
    }
  } else {
    console.warn(`loadtest: ${FASHION_MNIST_DIR} is missing; using random images`);
    for (let i = 0; i < IMAGES; i++) {
      const pixels = Uint8Array.from({ length: 784 }, () => Math.floor(Math.random() * 256));
      out.push({
        png: Buffer.from(encode({ width: 28, height: 28, data: pixels, channels: 1, depth: 8 })),
        tensor: Array.from(pixels, (p) => (p / 255 - mean[0]!) / std[0]!),
      });
    }
  }
  return out;
}

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;
/**
 * A simulated client's address. It is anonymous and keeps no nd_client cookie, so the Worker draws a
 * new client id, and so an arm, for each request (it ignores X-Client-Id from anonymous callers).
 */
function client(): Record<string, string> {
  const n = Math.floor(Math.random() * CLIENTS);
  return { "cf-connecting-ip": `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` };
}

interface Tally {
  status: Map<number, number>;
  arms: Map<string, number>;
  faults: Map<string, number>;
  /** wrangler dev's proxy's own 503s (PROXY_RESTART), which the Worker never saw. */
  proxyRestarts: number;
  /** The first few of the Worker's own non-2xx answers, to say what failed. */
  serverErrors: { path: string; status: number; body: string }[];
}

/** What the phases drive: wrangler dev (scripts/stack.ts) or Miniflare's own server. */
type Target = Pick<Stack, "workerUrl" | "teacher" | "startTeacher" | "workerdMemory" | "stop">;

function run(
  stack: Target,
  requests: NonNullable<Parameters<typeof autocannon>[0]["requests"]>,
  amount: number,
  onProgress?: (done: number) => void,
): Promise<{ result: Result; tally: Tally }> {
  const tally: Tally = { status: new Map(), arms: new Map(), faults: new Map(), proxyRestarts: 0, serverErrors: [] };
  const bump = (m: Map<string | number, number>, k: string | number) => m.set(k, (m.get(k) ?? 0) + 1);
  const withTally = requests.map((r) => ({
    ...r,
    onResponse: (status: number, body: string, _ctx: unknown, raw: Record<string, string>) => {
      if (status === 503 && body.includes(PROXY_RESTART)) tally.proxyRestarts++;
      else if ((status < 200 || status > 299) && tally.serverErrors.length < 10)
        tally.serverErrors.push({ path: r.path ?? "", status, body: body.slice(0, 300) });
      // autocannon keeps the header names' case as sent.
      const headers = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v]));
      if (headers["x-arm"]) bump(tally.arms as Map<string | number, number>, headers["x-arm"]);
      if (headers["x-teacher-fault"]) bump(tally.faults as Map<string | number, number>, headers["x-teacher-fault"]);
    },
  }));
  return new Promise((resolve, reject) => {
    let done = 0;
    const instance = autocannon(
      { url: stack.workerUrl, connections: CONNECTIONS, amount, timeout: 30, requests: withTally },
      (err, result) => (err ? reject(err) : resolve({ result, tally })),
    );
    instance.on("response", (_client: unknown, statusCode: number) => {
      bump(tally.status as Map<string | number, number>, statusCode);
      onProgress?.(++done);
    });
  });
}

const auth = { authorization: `Bearer ${TOKEN}` };
const data = images(student);
const compareKeys: string[] = [];
const classify = (path: string): RequestSpec & { setupRequest: (r: RequestSpec) => RequestSpec } => ({
  method: "POST",
  path,
  setupRequest: (r) => ({ ...r, body: pick(data).png, headers: { "content-type": "image/png", ...client() } }),
});
const compare = (): RequestSpec & { setupRequest: (r: RequestSpec) => RequestSpec } => ({
  method: "POST",
  path: "/v1/compare",
  setupRequest: (r) => ({
    ...r,
    body: pick(data).png,
    headers: { "content-type": "image/png", authorization: `Bearer ${pick(compareKeys)}` },
  }),
});
const MIXED = [
  ...Array.from({ length: 10 }, () => classify("/v1/classify")),
  ...Array.from({ length: 3 }, () => compare()),
  ...Array.from({ length: 3 }, () => ({
    method: "POST",
    path: `/v2/models/${student.name}/infer`,
    setupRequest: (r: RequestSpec) => ({
      ...r,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        inputs: [
          {
            name: student.input.name,
            shape: [1, ...student.input.shape.slice(1)],
            datatype: "FP32",
            data: pick(data).tensor,
          },
        ],
      }),
    }),
  })),
  classify(`/v1/models/${student.name}/classify`),
  classify("/v1/classify"),
  { method: "GET", path: "/v2/health/ready" },
  { method: "GET", path: "/v1/report?since=2m", headers: auth },
];
const ROUTED = [classify("/v1/classify")];

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
/** 5xx answers from the Worker itself (the dev proxy's restarts are counted apart). */
const fivexx = (t: Tally) => [...t.status].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0) - t.proxyRestarts;
const non2xx = (t: Tally) => [...t.status].filter(([s]) => s < 200 || s > 299).reduce((n, [, c]) => n + c, 0);
const statusDetail = (t: Tally) =>
  `${JSON.stringify(Object.fromEntries(t.status))}${t.proxyRestarts ? `, of them ${t.proxyRestarts} dev-proxy restarts` : ""}${t.serverErrors.length ? `; first from the Worker: ${JSON.stringify(t.serverErrors)}` : ""}`;
const answered = (t: Tally) => [...t.status.values()].reduce((a, b) => a + b, 0);
const checks: { name: string; ok: boolean; detail: string }[] = [];
const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

const VARS = {
  STUDENT_PERCENT: "50",
  SHADOW_PERCENT: "10",
  TEACHER_TIMEOUT_MS: "2000",
  ADMIN_TOKEN: TOKEN,
  TEACHER_TOKEN,
};
let stack: Stack | undefined;
let miniflare: MiniflareStack | undefined;
const output: Record<string, unknown> = { connections: CONNECTIONS, student: student.name, phases: [...phases] };
// Ctrl-C (or a timeout's SIGTERM) still stops the teacher host and wrangler dev.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    rmSync(DIRECT_CONFIG, { force: true });
    void Promise.all([stack?.stop(), miniflare?.stop()]).then(() => process.exit(130));
  });
}

async function start(config?: string): Promise<Stack> {
  rmSync(PERSIST, { recursive: true, force: true });
  applyLocalMigrations(PERSIST);
  console.log(`loadtest: starting the teacher host and wrangler dev${config ? ` (${config})` : ""}`);
  return startStack({
    workerPort: 8797,
    teacherPort: 8097,
    persistTo: PERSIST,
    teacherToken: TEACHER_TOKEN,
    vars: VARS,
    ...(config ? { config } : {}),
  });
}

async function report(s: Target, since: number): Promise<Report> {
  const r = await fetch(`${s.workerUrl}/v1/report?since=${since}`, { headers: auth });
  if (!r.ok) throw new Error(`report: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as Report;
}

/**
 * WRITE_REQUESTS routed requests; then, once the measurements have landed (the queue's consumer
 * writes a batch at most 5 s after its first message), transactions per 1,000 requests and rows lost.
 */
async function writes(s: Target, via: "direct" | "queue") {
  console.log(`loadtest: writes (${via}), ${WRITE_REQUESTS} routed requests at concurrency ${CONNECTIONS}`);
  const since = Date.now();
  const { tally } = await run(s, ROUTED, WRITE_REQUESTS);
  const answered = tally.status.get(200) ?? 0;
  let r = await report(s, since);
  for (const deadline = Date.now() + 60_000; r.requests < answered && Date.now() < deadline; r = await report(s, since))
    await new Promise((done) => setTimeout(done, 1_000));
  const served = r.rows.reduce((n, row) => n + row.served, 0);
  const result = {
    requests: WRITE_REQUESTS,
    answered,
    status: Object.fromEntries(tally.status),
    recordedRequests: r.requests,
    servedRows: served,
    rowsLost: answered - served,
    transactions: r.writes.transactions,
    rowsWritten: r.writes.rows,
    transactionsPerThousandRequests: r.writes.perThousandRequests,
  };
  check(
    `writes (${via}): every answered request recorded`,
    result.rowsLost === 0 && r.requests === answered,
    `${answered} answered, ${r.requests} in the report, ${served} served rows`,
  );
  console.log(
    `loadtest:   ${via}: ${result.transactions} D1 write transactions for ${r.requests} requests (${result.transactionsPerThousandRequests?.toFixed(1)} per 1,000), ${result.rowsLost} rows lost`,
  );
  return result;
}

/** The API keys /v1/compare uses, made in the target's own database. */
async function makeCompareKeys(target: Target): Promise<void> {
  compareKeys.length = 0;
  for (let i = 0; i < COMPARE_KEYS; i++) {
    const r = await fetch(`${target.workerUrl}/v1/keys`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ name: `loadtest-${i}`, rights: ["compare"] }),
    });
    if (r.status !== 201) throw new Error(`cannot make an API key: HTTP ${r.status} ${await r.text()}`);
    compareKeys.push(((await r.json()) as { key: string }).key);
  }
}

/** Bytes of the files under a folder (the local D1's SQLite files), 0 when it does not exist. */
function folderBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).reduce((n, f) => {
    const p = join(dir, f);
    const st = statSync(p);
    return n + (st.isDirectory() ? folderBytes(p) : st.size);
  }, 0);
}

interface IsolateProbe {
  sample(): Promise<IsolateMemory>;
  d1Dir: string;
}

/**
 * The mixed traffic after a warm-up that lasts until memory levels off (V8's heap and compiled code
 * grow for the first several thousand requests). With an isolate probe (Miniflare) the memory
 * checked is the Worker isolate's own and every non-2xx answer fails the phase; without one (wrangler
 * dev) the workerd process's memory is reported only, since it also holds the local D1 and the
 * runtime, and the dev proxy's own 503s are counted apart from the Worker's answers.
 */
async function mixedPhase(s: Target, server: "wrangler dev" | "miniflare", probe?: IsolateProbe) {
  const label = server === "miniflare" ? "miniflare" : "mixed";
  const isolateBytes = (m: IsolateMemory) => m.heapBytes + m.wasmBytes;
  const level = async () => (probe ? isolateBytes(await probe.sample()) : s.workerdMemory().worker);
  let warm = await level();
  let warmup = 0;
  for (let chunk = 1; chunk <= WARMUP_MAX_CHUNKS; chunk++) {
    await run(s, MIXED, WARMUP_CHUNK);
    warmup += WARMUP_CHUNK;
    const now = await level();
    const growth = now / warm - 1;
    console.log(
      `loadtest: ${label} warm-up ${warmup}: ${probe ? "Worker isolate" : "workerd"} ${mb(now)} MB (${(growth * 100).toFixed(1)}% over the last ${WARMUP_CHUNK})`,
    );
    warm = now;
    if (chunk >= 2 && growth < WARMUP_SETTLED) break;
  }

  console.log(`loadtest: ${label}, ${MIXED_REQUESTS} requests at concurrency ${CONNECTIONS} through ${server}`);
  type Point = {
    requests: number;
    workerdMB: number;
    proxyMB: number;
    isolate?: { heapMB: number; wasmMB: number };
    d1MB?: number;
  };
  // The isolate is sampled only while idle (before and after the run): a sample collects garbage in it,
  // and sampling while requests ran lost a few of their answers (12 of 2,000 in a smoke run).
  const point = async (requests: number, idle: boolean): Promise<Point> => {
    const rss = s.workerdMemory();
    const isolate = probe && idle ? await probe.sample() : undefined;
    return {
      requests,
      workerdMB: mb(rss.worker),
      proxyMB: mb(rss.proxy),
      ...(isolate ? { isolate: { heapMB: mb(isolate.heapBytes), wasmMB: mb(isolate.wasmBytes) } } : {}),
      ...(probe ? { d1MB: mb(folderBytes(probe.d1Dir)) } : {}),
    };
  };
  // Memory through the run: a leak climbs steadily, a heap settling levels off.
  const memory: Point[] = [await point(0, true)];
  const sampling: Promise<void>[] = [];
  const mixed = await run(s, MIXED, MIXED_REQUESTS, (done) => {
    if (done % SAMPLE_EVERY === 0) {
      sampling.push(
        point(done, false).then((p) => {
          memory.push(p);
          console.log(
            `loadtest:   ${done} / ${MIXED_REQUESTS}: workerd ${p.workerdMB} MB${probe ? `, D1 files ${p.d1MB} MB` : `, dev proxy ${p.proxyMB} MB`}`,
          );
        }),
      );
    }
  });
  await Promise.all(sampling);
  const after = await point(MIXED_REQUESTS, true);
  memory.push(after);
  const m = mixed.result;
  if (probe) {
    check(`${label}: 0 non-2xx`, non2xx(mixed.tally) === 0, statusDetail(mixed.tally));
  } else {
    check(`${label}: no 5xx from the Worker`, fivexx(mixed.tally) === 0, statusDetail(mixed.tally));
  }
  check(
    `${label}: none dropped`,
    m.errors === 0 && m.timeouts === 0 && answered(mixed.tally) === MIXED_REQUESTS,
    `${answered(mixed.tally)} answered, ${m.errors} errors, ${m.timeouts} timeouts, ${m.resets} connection resets`,
  );
  const first = memory[0]!;
  if (probe) {
    const before = first.isolate!.heapMB + first.isolate!.wasmMB;
    const end = after.isolate!.heapMB + after.isolate!.wasmMB;
    const growth = end / before - 1;
    check(
      `${label}: the Worker isolate's memory within 10% of warm-up`,
      growth <= 0.1,
      `heap after GC ${first.isolate!.heapMB} -> ${after.isolate!.heapMB} MB, WASM ${first.isolate!.wasmMB} -> ${after.isolate!.wasmMB} MB (${(growth * 100).toFixed(1)}%); reported, not checked: workerd process ${first.workerdMB} -> ${after.workerdMB} MB, local D1 files ${first.d1MB} -> ${after.d1MB} MB`,
    );
  }
  const report = await (await fetch(`${s.workerUrl}/v1/report`, { headers: auth })).json();
  return {
    server,
    warmupRequests: warmup,
    requests: MIXED_REQUESTS,
    seconds: m.duration,
    requestsPerSecond: m.requests.average,
    latencyMs: { p50: m.latency.p50, p90: m.latency.p90, p99: m.latency.p99, max: m.latency.max },
    status: Object.fromEntries(mixed.tally.status),
    devProxyRestarts: mixed.tally.proxyRestarts,
    workerErrors: mixed.tally.serverErrors,
    connectionResets: m.resets,
    arms: Object.fromEntries(mixed.tally.arms),
    memory,
    report,
  };
}

try {
  if (phases.has("writes")) {
    // Before: wrangler.toml without the queue, so every request writes its own rows.
    // The staging and production environments are not run locally: cut them, queues and all.
    const full = readFileSync("wrangler.toml", "utf8");
    const environments = full.search(/^\[+env\./m);
    const toml = environments < 0 ? full : full.slice(0, environments);
    const direct = toml.replace(/^\[\[queues\.(producers|consumers)\]\]\n(?:(?!\[)[^\n]*\n)*/gm, "");
    if (direct === toml || /queues/.test(direct.replace(/^#.*$/gm, "")))
      throw new Error("could not take the queue out of wrangler.toml");
    writeFileSync(
      DIRECT_CONFIG,
      `# Written by bench/loadtest.ts for its "before" measurement, and removed after it.\n${direct}`,
    );
    try {
      stack = await start(DIRECT_CONFIG);
      const before = await writes(stack, "direct");
      await stack.stop();
      stack = await start();
      const after = await writes(stack, "queue");
      output.writes = { direct: before, queue: after };
      check(
        "writes: the queue batches D1 writes",
        (after.transactionsPerThousandRequests ?? Infinity) < (before.transactionsPerThousandRequests ?? 0) / 10,
        `${before.transactionsPerThousandRequests?.toFixed(1)} -> ${after.transactionsPerThousandRequests?.toFixed(1)} transactions per 1,000 requests`,
      );
    } finally {
      rmSync(DIRECT_CONFIG, { force: true });
    }
  }
  if (phases.has("mixed") || phases.has("faults")) {
    stack ??= await start();
    await makeCompareKeys(stack);
  }
  if (phases.has("mixed")) output.mixed = await mixedPhase(stack!, "wrangler dev");
  if (phases.has("faults")) {
    const s = stack!;
    console.log(
      `loadtest: teacher faults, ${FAULT_REQUESTS} routed requests; the teacher is killed at 25% and restarted at 60%`,
    );
    const since = Date.now();
    let killed = false;
    let restart: Promise<void> | undefined;
    const faults = await run(s, ROUTED, FAULT_REQUESTS, (done) => {
      if (!killed && done >= FAULT_REQUESTS * 0.25) {
        killed = true;
        s.teacher.child.kill("SIGKILL");
      }
      if (!restart && done >= FAULT_REQUESTS * 0.6) restart = s.startTeacher();
    });
    await restart;
    const seen = [...faults.tally.faults.values()].reduce((a, b) => a + b, 0);
    // The last measurements are written after their responses, through the queue.
    let faultReport = await report(s, since);
    for (
      const deadline = Date.now() + 60_000;
      faultReport.requests < answered(faults.tally) && Date.now() < deadline;
      faultReport = await report(s, since)
    ) {
      await new Promise((r) => setTimeout(r, 1_000));
    }
    const reported = faultReport.rows
      .filter((r) => r.arm === "teacher")
      .reduce((n, r) => n + Object.values(r.faults).reduce((a, b) => a + (b ?? 0), 0), 0);
    check("faults: no 5xx from the Worker", fivexx(faults.tally) === 0, statusDetail(faults.tally));
    check(
      "faults: every request answered",
      faults.result.errors === 0 && faults.result.timeouts === 0 && answered(faults.tally) === FAULT_REQUESTS,
      `${answered(faults.tally)} answered`,
    );
    check(
      "faults: the student stood in",
      seen > 0,
      `${seen} responses carried X-Teacher-Fault: ${JSON.stringify(Object.fromEntries(faults.tally.faults))}`,
    );
    check(
      "faults: the report counts them",
      faultReport.fallbacks === seen && reported >= seen,
      `report: ${faultReport.fallbacks} fallbacks, ${reported} teacher faults (shadow faults included)`,
    );
    output.faults = {
      requests: FAULT_REQUESTS,
      latencyMs: { p50: faults.result.latency.p50, p99: faults.result.latency.p99 },
      status: Object.fromEntries(faults.tally.status),
      devProxyRestarts: faults.tally.proxyRestarts,
      arms: Object.fromEntries(faults.tally.arms),
      teacherFaults: Object.fromEntries(faults.tally.faults),
      report: faultReport,
    };
  }
  if (phases.has("miniflare")) {
    // The wrangler dev stack's ports are reused: it goes first.
    await stack?.stop();
    stack = undefined;
    console.log("loadtest: starting the teacher host and the Worker under Miniflare's own server");
    miniflare = await startMiniflareStack({
      port: 8797,
      teacherPort: 8097,
      teacherToken: TEACHER_TOKEN,
      persistTo: MINIFLARE_PERSIST,
      outdir: MINIFLARE_OUTDIR,
      vars: VARS,
    });
    await makeCompareKeys(miniflare);
    const isolate = miniflare.isolate;
    output.miniflare = await mixedPhase(miniflare, "miniflare", {
      sample: () => isolate.sample(),
      d1Dir: join(MINIFLARE_PERSIST, "v3", "d1"),
    });
  }
} finally {
  await Promise.all([stack?.stop(), miniflare?.stop()]);
}

output.checks = checks;
writeJsonAtomic(".bench/loadtest.json", output);
if (output.writes) console.log(JSON.stringify({ writes: output.writes }, null, 2));
for (const phase of ["mixed", "miniflare"] as const)
  if (output[phase])
    console.log(JSON.stringify({ [phase]: { ...(output[phase] as object), report: undefined } }, null, 2));
if (output.faults)
  console.log(JSON.stringify({ faults: { ...(output.faults as object), report: undefined } }, null, 2));
for (const c of checks) console.log(`${c.ok ? "PASS" : "FAIL"}  ${c.name}: ${c.detail}`);
process.exit(checks.every((c) => c.ok) ? 0 : 1);
