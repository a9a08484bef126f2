// `npm run teacher`: serves the teacher from models/ over the Open Inference Protocol, on the GPU when
// there is one. Flags override environment variables, which override the defaults:
//   --manifest  TEACHER_MANIFEST  models/manifest.json
//   --model     TEACHER_MODEL     the manifest's only model with role "teacher"
//   --host      TEACHER_HOST      127.0.0.1 (loopback: expose it on purpose, e.g. 0.0.0.0 behind TLS)
//   --port      TEACHER_PORT      8000 (Triton's HTTP port; 0 picks a free one)
//   --provider  TEACHER_PROVIDER  auto (cuda, else cpu) | cuda | cpu
// For fault tests only: --fault-delay-ms N (answer inference N ms late), --fault-garbage.
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { createTeacherApp } from "./app.ts";
import type { ProviderChoice } from "./engine.ts";
import type { FaultOptions } from "./faults.ts";
import { TeacherLoadError, loadTeacher } from "./model.ts";
import { serve } from "./serve.ts";

const USAGE = "usage: npm run teacher -- [--manifest FILE] [--model NAME] [--host ADDR] [--port N] [--provider auto|cuda|cpu] [--fault-delay-ms N] [--fault-garbage]";

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
if (provider !== "auto" && provider !== "cuda" && provider !== "cpu") fail(`provider must be auto, cuda or cpu, got "${provider}"`);
const faultOptions: FaultOptions = {};
if (values["fault-delay-ms"] !== undefined) faultOptions.delayMs = integer(values["fault-delay-ms"], "--fault-delay-ms", 0, 600_000);
if (values["fault-garbage"]) faultOptions.garbage = true;

let teacher;
try {
  teacher = await loadTeacher({ manifestPath, provider: provider as ProviderChoice, ...(name ? { name } : {}) });
} catch (err) {
  fail(err instanceof TeacherLoadError || (err instanceof Error && err.name === "ManifestError") ? err.message : String(err));
}
const { entry, store, engine } = teacher;
const used = engine.provider ?? "cpu";
if (engine.fallbackReason) console.log(`teacher: CUDA unavailable (${engine.fallbackReason.split("\n")[0]}); using the CPU`);
console.log(`teacher: model "${entry.name}" version ${entry.version} (${entry.file}, sha256 ${entry.sha256.slice(0, 12)}…) on ${used.toUpperCase()}`);
if (faultOptions.delayMs || faultOptions.garbage) console.log(`teacher: FAULT INJECTION ON: ${JSON.stringify(faultOptions)}`);

const app = createTeacherApp({
  store,
  provider: used,
  server: { name: `${pkg.name}-teacher`, version: pkg.version },
  ...(faultOptions.delayMs || faultOptions.garbage ? { faults: faultOptions } : {}),
});
let running;
try {
  running = await serve(app.fetch, { host, port });
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
