// `npx tsx scripts/canary-demo.ts`: the canary on the real local system, end to end:
// the teacher host and `wrangler dev` serving the shipped students, the load test's kind of traffic
// (Fashion-MNIST test images from many simulated clients through the split, every student answer
// shadowed, plus compare and forced requests the canary must ignore), and the canary's cron fired
// through wrangler dev's /__scheduled after each round. Two canaries in turn, each from 0%:
//   lenient  low thresholds: must walk every step to done;
//   strict   an agreement threshold no student reaches (0.999): must roll back to 0%.
// Exits 1 when either ends otherwise. Options: --requests N split requests per round (default 300),
// --concurrency C (default 8), --rounds R most rounds per canary (default 12).
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { encode } from "fast-png";
import type { CanaryDecision } from "../src/canary/state.ts";
import type { CanarySettings } from "../src/canary/settings.ts";
import { FASHION_MNIST_DIR, loadFashionMnist } from "../training/data/fashion-mnist.ts";
import { applyLocalMigrations, startStack } from "./stack.ts";

const { values: opts } = parseArgs({
  options: {
    requests: { type: "string", default: "300" },
    concurrency: { type: "string", default: "8" },
    rounds: { type: "string", default: "12" },
  },
});
const REQUESTS = Number(opts.requests);
const CONCURRENCY = Number(opts.concurrency);
const ROUNDS = Number(opts.rounds);
const PERSIST = ".bench/canary-demo-state";
const CLIENTS = 2_000;
const ADMIN_TOKEN = randomBytes(24).toString("base64url");
const TEACHER_TOKEN = randomBytes(32).toString("base64url");
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
// The canary's cron expression (src/scheduled.ts), as a query value.
const TICK = `/__scheduled?cron=${encodeURIComponent("* * * * *")}`;

if (!existsSync(FASHION_MNIST_DIR))
  throw new Error(
    `canary-demo needs the Fashion-MNIST test set in ${FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)`,
  );
const test = loadFashionMnist().test;
const size = test.height * test.width;
const images = Array.from({ length: 512 }, (_, i) =>
  Buffer.from(
    encode({
      width: test.width,
      height: test.height,
      data: test.images.subarray(i * size, (i + 1) * size),
      channels: 1,
      depth: 8,
    }),
  ),
);
const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;

interface Scenario {
  name: string;
  settings: Partial<CanarySettings>;
  expect: "done" | "rolled_back";
}

const LENIENT: Scenario = {
  name: "lenient",
  settings: {
    steps: [5, 25, 50, 100],
    minAgreement: 0.5,
    maxP99Ms: 2_000,
    maxErrorRate: 0.05,
    maxTeacherFaultRate: 0.2,
    windowMinutes: 10,
    minSamples: 10,
  },
  expect: "done",
};
// Enough pairs that a student agreeing 95% of the time cannot pass by luck (0.95^100 < 1%).
const STRICT: Scenario = {
  name: "strict",
  settings: { ...LENIENT.settings, steps: [25, 50, 100], minAgreement: 0.999, minSamples: 100 },
  expect: "rolled_back",
};

async function call(url: string, init: RequestInit = {}): Promise<unknown> {
  const r = await fetch(url, init);
  const body = await r.text();
  if (!r.ok) throw new Error(`${init.method ?? "GET"} ${url}: HTTP ${r.status} ${body}`);
  return body.startsWith("{") ? JSON.parse(body) : body;
}

/** One round: REQUESTS through the split from random clients (each its own address), and a few compare and forced ones. */
async function round(workerUrl: string): Promise<number> {
  const kinds = [
    ...Array.from({ length: REQUESTS }, () => "split"),
    ...Array.from({ length: Math.ceil(REQUESTS / 20) }, () => "compare"),
    ...Array.from({ length: Math.ceil(REQUESTS / 20) }, () => "forced"),
  ];
  let next = 0;
  let ok = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < kinds.length) {
        const kind = kinds[next++]!;
        const n = Math.floor(Math.random() * CLIENTS);
        // An anonymous client from its own address, with no nd_client cookie: its arm is drawn afresh.
        const client = { "cf-connecting-ip": `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` };
        const headers = {
          "content-type": "image/png",
          ...(kind === "split" ? client : admin),
          ...(kind === "forced" ? { "x-force-arm": "student" } : {}),
        };
        const r = await fetch(`${workerUrl}${kind === "compare" ? "/v1/compare" : "/v1/classify"}`, {
          method: "POST",
          headers,
          body: pick(images),
        });
        await r.arrayBuffer();
        if (r.ok) ok++;
      }
    }),
  );
  return ok;
}

/** Waits until the report holds the round's requests (the queue's consumer writes within seconds). */
async function landed(workerUrl: string, since: number, answered: number): Promise<void> {
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 1_000))) {
    const { requests } = (await call(`${workerUrl}/v1/report?since=${since}`, { headers: admin })) as {
      requests: number;
    };
    if (requests >= answered) return;
  }
  throw new Error(`the report did not reach ${answered} requests within 60 s`);
}

async function run(workerUrl: string, s: Scenario): Promise<boolean> {
  const json = { ...admin, "content-type": "application/json" };
  const reset = Object.fromEntries(Object.keys(LENIENT.settings).map((k) => [k, null]));
  await call(`${workerUrl}/v1/config`, {
    method: "PATCH",
    headers: json,
    body: JSON.stringify({ studentPercent: null, canary: { ...reset, ...s.settings } }),
  });
  await call(`${workerUrl}/v1/canary/start`, { method: "POST", headers: admin });
  console.log(`canary-demo: ${s.name} canary started, ${JSON.stringify(s.settings)}`);
  let status = "running";
  for (let i = 0; i < ROUNDS && status === "running"; i++) {
    const since = Date.now();
    await landed(workerUrl, since, await round(workerUrl));
    await call(`${workerUrl}${TICK}`);
    const canary = (await call(`${workerUrl}/v1/canary?limit=1`, { headers: admin })) as {
      status: string;
      decisions: CanaryDecision[];
    };
    status = canary.status;
    const d = canary.decisions[0]!;
    console.log(`canary-demo:   round ${i + 1}: ${d.action} ${d.percentFrom}% -> ${d.percentTo}%: ${d.reason}`);
  }
  if (status === "running") await call(`${workerUrl}/v1/canary/stop`, { method: "POST", headers: admin });
  const passed = status === s.expect;
  console.log(`canary-demo: ${s.name}: ${status}, expected ${s.expect}: ${passed ? "ok" : "FAILED"}`);
  return passed;
}

rmSync(PERSIST, { recursive: true, force: true });
applyLocalMigrations(PERSIST);
console.log("canary-demo: starting the teacher host and wrangler dev");
const stack = await startStack({
  workerPort: 8798,
  teacherPort: 8098,
  persistTo: PERSIST,
  teacherToken: TEACHER_TOKEN,
  testScheduled: true,
  vars: { ADMIN_TOKEN, TEACHER_TOKEN, STUDENT_PERCENT: "0", SHADOW_PERCENT: "100", TEACHER_TIMEOUT_MS: "2000" },
});
const results: boolean[] = [];
try {
  for (const scenario of [LENIENT, STRICT]) results.push(await run(stack.workerUrl, scenario));
} finally {
  await stack.stop();
}
process.exit(results.every(Boolean) ? 0 : 1);
