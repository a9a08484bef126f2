// `npm run teacher`: serves the teacher from models/ over the Open Inference Protocol, on the GPU when
// there is one. Flags override environment variables, which override the defaults:
//   --manifest  TEACHER_MANIFEST  models/manifest.json
//   --model     TEACHER_MODEL     the manifest's only model with role "teacher"
//   --host      TEACHER_HOST      127.0.0.1 (loopback: expose it on purpose, e.g. 0.0.0.0 behind TLS)
//   --port      TEACHER_PORT      8000 (Triton's HTTP port; 0 picks a free one)
//   --provider  TEACHER_PROVIDER  auto (cuda, else cpu) | cuda | cpu
//   --auth-header     TEACHER_AUTH_HEADER     Authorization (as "Bearer <token>"; any other header: the token alone)
//   --max-concurrent  TEACHER_MAX_CONCURRENT  64 requests at once (a batch holds at most this many)
//   --max-queue       TEACHER_MAX_QUEUE       64 waiting; beyond that 503 with Retry-After
//   --max-body-bytes  TEACHER_MAX_BODY_BYTES  4194304, refused with 413 while the body arrives
//   --max-batch       TEACHER_MAX_BATCH       32 images in one onnxruntime run (1: no batching)
//   --batch-window-ms TEACHER_BATCH_WINDOW_MS 2: how long a request waits for others to batch with
//   --headers-timeout-ms TEACHER_HEADERS_TIMEOUT_MS 10000 for a request's headers to arrive
//   --request-timeout-ms TEACHER_REQUEST_TIMEOUT_MS 30000 for a whole request to arrive (then 408)
// The token is TEACHER_TOKEN, from the environment only (a flag would show in the process list); the
// host refuses to start without it unless --no-auth says so (e.g. a gateway in front checks it).
// For fault tests only: --fault-delay-ms N (answer inference N ms late), --fault-garbage.
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { DEFAULT_TEACHER_AUTH_HEADER, TeacherLinkError, checkTeacherLink } from "../src/routing/teacher-link.ts";
import { createTeacherApp } from "./app.ts";
import { DEFAULT_BATCH_WINDOW_MS, DEFAULT_MAX_BATCH } from "./batching.ts";
import type { ProviderChoice } from "./engine.ts";
import type { FaultOptions } from "./faults.ts";
import { TeacherMetrics } from "./metrics.ts";
import { TeacherLoadError, loadTeacher } from "./model.ts";
import { DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, serve } from "./serve.ts";

const USAGE =
  "usage: TEACHER_TOKEN=... npm run teacher -- [--manifest FILE] [--model NAME] [--host ADDR] [--port N] [--provider auto|cuda|cpu]\n" +
  "         [--auth-header NAME | --no-auth] [--max-concurrent N] [--max-queue N] [--max-body-bytes N] [--max-batch N] [--batch-window-ms N]\n" +
  "         [--headers-timeout-ms N] [--request-timeout-ms N] [--fault-delay-ms N] [--fault-garbage]";

function fail(message: string): never {
  console.error(`teacher: ${message}`);
  process.exit(2);
}

function integer(raw: string, what: string, min: number, max: number): number {
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) fail(`${what} must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        manifest: { type: "string" },
        model: { type: "string" },
        host: { type: "string" },
        port: { type: "string" },
        provider: { type: "string" },
        "auth-header": { type: "string" },
        "no-auth": { type: "boolean" },
        "max-concurrent": { type: "string" },
        "max-queue": { type: "string" },
        "max-body-bytes": { type: "string" },
        "max-batch": { type: "string" },
        "batch-window-ms": { type: "string" },
        "headers-timeout-ms": { type: "string" },
        "request-timeout-ms": { type: "string" },
        "fault-delay-ms": { type: "string" },
        "fault-garbage": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
})();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const env = process.env;
const manifestPath = values.manifest ?? env.TEACHER_MANIFEST ?? "models/manifest.json";
const name = values.model ?? env.TEACHER_MODEL;
const host = values.host ?? env.TEACHER_HOST ?? "127.0.0.1";
const port = integer(values.port ?? env.TEACHER_PORT ?? "8000", "port", 0, 65535);
const provider = values.provider ?? env.TEACHER_PROVIDER ?? "auto";
if (provider !== "auto" && provider !== "cuda" && provider !== "cpu")
  fail(`provider must be auto, cuda or cpu, got "${provider}"`);
const faultOptions: FaultOptions = {};
if (values["fault-delay-ms"] !== undefined)
  faultOptions.delayMs = integer(values["fault-delay-ms"], "--fault-delay-ms", 0, 600_000);
if (values["fault-garbage"]) faultOptions.garbage = true;
const maxInFlight = integer(
  values["max-concurrent"] ?? env.TEACHER_MAX_CONCURRENT ?? "64",
  "max-concurrent",
  1,
  10_000,
);
const maxQueued = integer(values["max-queue"] ?? env.TEACHER_MAX_QUEUE ?? "64", "max-queue", 0, 100_000);
const maxBodyBytes = integer(
  values["max-body-bytes"] ?? env.TEACHER_MAX_BODY_BYTES ?? "4194304",
  "max-body-bytes",
  1,
  2 ** 31,
);
const maxBatch = integer(
  values["max-batch"] ?? env.TEACHER_MAX_BATCH ?? String(DEFAULT_MAX_BATCH),
  "max-batch",
  1,
  4096,
);
const windowMs = integer(
  values["batch-window-ms"] ?? env.TEACHER_BATCH_WINDOW_MS ?? String(DEFAULT_BATCH_WINDOW_MS),
  "batch-window-ms",
  0,
  1_000,
);
const headersTimeoutMs = integer(
  values["headers-timeout-ms"] ?? env.TEACHER_HEADERS_TIMEOUT_MS ?? String(DEFAULT_HEADERS_TIMEOUT_MS),
  "headers-timeout-ms",
  100,
  600_000,
);
const requestTimeoutMs = integer(
  values["request-timeout-ms"] ?? env.TEACHER_REQUEST_TIMEOUT_MS ?? String(DEFAULT_REQUEST_TIMEOUT_MS),
  "request-timeout-ms",
  100,
  3_600_000,
);
const authHeader = values["auth-header"] ?? env.TEACHER_AUTH_HEADER ?? DEFAULT_TEACHER_AUTH_HEADER;
const token = env.TEACHER_TOKEN ?? "";
if (values["no-auth"]) {
  if (token) fail("--no-auth and TEACHER_TOKEN contradict each other: unset one");
} else {
  if (!token)
    fail(
      "TEACHER_TOKEN is not set: the host answers only callers that send it (npm start generates one into .dev.vars); --no-auth turns the check off",
    );
  try {
    checkTeacherLink(token, authHeader, "TEACHER_TOKEN", "--auth-header");
  } catch (err) {
    fail(err instanceof TeacherLinkError ? err.message : String(err));
  }
}

const metrics = new TeacherMetrics();
/** Requests holding a concurrency slot: those not yet in the batcher may join a batch soon. */
let slotsHeld = 0;
let teacher: Awaited<ReturnType<typeof loadTeacher>> | undefined;
const arriving = () => slotsHeld - (teacher?.store.holding ?? 0);
try {
  teacher = await loadTeacher({
    manifestPath,
    provider: provider as ProviderChoice,
    ...(name ? { name } : {}),
    batching: { maxBatch, windowMs, onRun: metrics.run, arriving },
  });
} catch (err) {
  fail(
    err instanceof TeacherLoadError || (err instanceof Error && err.name === "ManifestError")
      ? err.message
      : String(err),
  );
}
const { entry, store, engine } = teacher;
metrics.countBatchQueue(() => store.waiting);
const used = engine.provider ?? "cpu";
if (engine.fallbackReason)
  console.log(`teacher: CUDA unavailable (${engine.fallbackReason.split("\n")[0]}); using the CPU`);
console.log(
  `teacher: model "${entry.name}" version ${entry.version} (${entry.file}, sha256 ${entry.sha256.slice(0, 12)}…) on ${used.toUpperCase()}`,
);
if (faultOptions.delayMs || faultOptions.garbage)
  console.log(`teacher: FAULT INJECTION ON: ${JSON.stringify(faultOptions)}`);
console.log(
  values["no-auth"]
    ? "teacher: AUTHENTICATION OFF (--no-auth): anyone who reaches this port can run the model"
    : `teacher: callers must send ${authHeader}${authHeader.toLowerCase() === "authorization" ? ": Bearer" : ":"} <TEACHER_TOKEN>`,
);
console.log(
  `teacher: at most ${maxInFlight} requests at once and ${maxQueued} waiting; bodies up to ${maxBodyBytes} bytes, within ${requestTimeoutMs} ms`,
);
console.log(
  maxBatch === 1
    ? "teacher: batching off (--max-batch 1)"
    : `teacher: batches of up to ${maxBatch} images, gathered for up to ${windowMs} ms`,
);

const app = createTeacherApp({
  store,
  provider: used,
  server: { name: `${pkg.name}-teacher`, version: pkg.version },
  ...(values["no-auth"] ? {} : { auth: { token, header: authHeader } }),
  concurrency: { maxInFlight, maxQueued, onChange: (state) => (slotsHeld = state.running) },
  limits: { maxBodyBytes },
  ...(faultOptions.delayMs || faultOptions.garbage ? { faults: faultOptions } : {}),
  metrics,
});
let running: Awaited<ReturnType<typeof serve>>;
try {
  running = await serve(app.fetch, { host, port, headersTimeoutMs, requestTimeoutMs });
} catch (err) {
  fail(`cannot listen on ${host}:${port}: ${(err as Error).message}`);
}
let closing = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
// Test setups and scripts/start.ts read this line for the address, and may signal at once: the
// handlers above are in place by then.
console.log(`teacher: listening on ${running.url}`);
