// `npm start`: the whole local system on the models in models/: applies the local D1 migrations,
// starts the teacher host (127.0.0.1:8000) and `wrangler dev` (127.0.0.1:8787), waits until both
// answer, prints commands to try, and stops both on Ctrl-C.
// Ports: TEACHER_PORT, WORKER_PORT. The secrets come from .dev.vars, written with random values on
// the first run: ADMIN_TOKEN (the admin API), CLIENT_ID_SECRET (signs the client ids the Worker
// issues), TEACHER_TOKEN (the Worker's proof to the teacher host; wrangler dev reads it from
// .dev.vars, the teacher host gets it in its environment). An ADMIN_TOKEN or CLIENT_ID_SECRET under
// 32 characters there is refused before anything starts (the Worker would refuse it too).
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { secretProblem } from "../src/access/secrets.ts";
import { applyLocalMigrations, startStack } from "./stack.ts";

const MANIFEST = "models/manifest.json";
const DEV_VARS = ".dev.vars";

function port(name: string, fallback: number): number {
  const raw = process.env[name] ?? String(fallback);
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    console.error(`start: ${name} must be a port number, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

/** A secret from .dev.vars, adding a fresh random one (the file readable by the owner only) if absent. */
function devSecret(name: string): string {
  const text = existsSync(DEV_VARS) ? readFileSync(DEV_VARS, "utf8") : "";
  const m = new RegExp(`^${name}\\s*=\\s*"?([^"\\n]+)"?\\s*$`, "m").exec(text);
  if (m) return m[1]!;
  const token = randomBytes(32).toString("base64url");
  writeFileSync(DEV_VARS, `${text}${text && !text.endsWith("\n") ? "\n" : ""}${name}="${token}"\n`, { mode: 0o600 });
  console.log(`start: wrote a new ${name} to ${DEV_VARS}`);
  return token;
}

/**
 * Loads the default student's ONNX session before the first request does: that takes seconds, on the
 * isolate's only thread, and a first /v1/compare that paid it could run out of time on the teacher.
 */
async function warmUp(readyUrl: string): Promise<void> {
  const started = performance.now();
  try {
    const r = await fetch(readyUrl, { signal: AbortSignal.timeout(60_000) });
    if (!r.ok) throw new Error(`HTTP ${r.status}: ${(await r.text()).slice(0, 200)}`);
    console.log(`start: default student loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    console.error(
      `start: warning: loading the default student failed (${err instanceof Error ? err.message : String(err)}); the first request will try again`,
    );
  }
}

if (!existsSync(MANIFEST)) {
  console.error(
    `start: ${MANIFEST} is missing: train and export models first (see docs/training.md), or restore models/ from git`,
  );
  process.exit(2);
}
const teacherPort = port("TEACHER_PORT", 8000);
const workerPort = port("WORKER_PORT", 8787);
const token = devSecret("ADMIN_TOKEN");
const teacherToken = devSecret("TEACHER_TOKEN");
for (const name of ["ADMIN_TOKEN", "CLIENT_ID_SECRET"]) {
  const problem = secretProblem(name, devSecret(name));
  if (problem) {
    console.error(`start: ${problem}: change it in ${DEV_VARS}, or delete its line for a new random one`);
    process.exit(2);
  }
}

console.log("start: applying D1 migrations to the local database");
try {
  applyLocalMigrations();
} catch (err) {
  const e = err as { stderr?: Buffer; message: string };
  console.error(`start: wrangler d1 migrations apply failed:\n${e.stderr?.toString() || e.message}`);
  process.exit(1);
}

console.log("start: starting the teacher host and wrangler dev (the first start builds the Worker: up to a minute)");
// Ctrl-C during start-up stops whatever has started; afterwards it stops the running stack.
const starting = new AbortController();
let onSignal = () => starting.abort();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => onSignal());
const stack = await startStack({
  teacherPort,
  workerPort,
  teacherToken,
  signal: starting.signal,
  log: (source, line) => {
    // wrangler dev tries to fetch Request.cf data from the internet and says so with a stack trace;
    // offline that is harmless (it falls back to a placeholder), so it is not repeated here.
    if (/Request\.cf|ENOTFOUND workers\.cloudflare\.com|^\s+at GetAddrInfoReqWrap/.test(line)) return;
    if (line.trim()) console.log(`[${source}] ${line}`);
  },
}).catch((err: unknown) => {
  if (starting.signal.aborted) process.exit(130);
  console.error(`start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

const w = stack.workerUrl;
const manifest = JSON.parse(readFileSync(MANIFEST, "utf8")) as {
  defaultStudent: string;
  models: { name: string; role: string }[];
};
await warmUp(`${w}/v2/models/${manifest.defaultStudent}/ready`);
const auth = `-H "Authorization: Bearer ${token}"`;
const png = `-H "Content-Type: image/png" --data-binary @samples/ankle-boot.png`;
const teacherName = manifest.models.find((m) => m.role === "teacher")?.name ?? "<teacher>";
console.log(`
narrowdeep is running:
  Worker     ${w}   (wrangler dev, local D1)
  teacher    ${stack.teacherUrl}   (Open Inference Protocol)
  dashboard  ${w}/dashboard   (sign in with ADMIN_TOKEN from ${DEV_VARS}; docs/dashboard.md)

Try (samples/ has Fashion-MNIST test images; any PNG or JPEG works):
  curl -s -X POST ${w}/v1/classify -b nd.cookies -c nd.cookies ${png} -D -   # the signed nd_client cookie keeps you on your arm
  curl -s -X POST ${w}/v1/classify -H "X-Client-Id: alice" ${auth} ${png} -D -   # a key or the admin token may name its client
  curl -s -X POST ${w}/v1/classify -H "X-Force-Arm: teacher" ${auth} ${png}     # forcing an arm needs a key or the admin token
  curl -s -X POST "${w}/v1/compare?k=3" ${auth} ${png}
  curl -s -X POST ${w}/v1/keys ${auth} -H "Content-Type: application/json" -d '{"name": "me", "rights": ["compare", "force"]}'
  curl -s "${w}/v1/report?since=1h" ${auth}
  curl -s -X PATCH ${w}/v1/config ${auth} -H "Content-Type: application/json" -d '{"studentPercent": 80, "shadowPercent": 10}'
  curl -s ${w}/v2/models/${manifest.defaultStudent}
  curl -s ${stack.teacherUrl}/v2/models/${teacherName} -H "Authorization: Bearer $(sed -n 's/^TEACHER_TOKEN="\\(.*\\)"/\\1/p' ${DEV_VARS})"   # the teacher's execution provider

Ctrl-C stops both.`);

let stopping = false;
onSignal = () => {
  if (stopping) return;
  stopping = true;
  console.log("\nstart: stopping");
  stack.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
stack.wrangler.once("exit", (code) => {
  if (stopping) return;
  console.error(`start: wrangler dev exited (code ${code}); stopping the teacher`);
  void stack.stop().then(() => process.exit(1));
});
