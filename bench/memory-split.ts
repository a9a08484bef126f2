// Which traffic grows the workerd process under the load test, and whether the Worker's isolate grows
// with it (a diagnostic, not a test): the Worker under Miniflare (bench/miniflare-stack.ts), the
// student taking every routed request (STUDENT_PERCENT=100, no shadows, so no teacher traffic), then
// three kinds of traffic in turn, 1,000 requests at a time at concurrency 32, and after each the
// workerd process's RSS beside the isolate's heap (after GC) and WebAssembly memory:
//   OIP infer (JSON in, no image, no D1), named-model classify (a PNG, no D1), routed /v1/classify
//   (a PNG, and a measurement row through the queue into the local D1).
//   npx tsx bench/memory-split.ts [--rounds N]     (about 3 minutes with the default 3)
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import autocannon, { type RequestSpec } from "autocannon";
import { startMiniflareStack } from "./miniflare-stack.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "3" } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`--rounds must be a positive integer, got "${values.rounds}"`);
const BATCH = 1_000;

const s = await startMiniflareStack({
  port: 8795,
  teacherPort: 8095,
  teacherToken: randomBytes(32).toString("base64url"),
  persistTo: ".wrangler/memory-split",
  outdir: ".bench/memory-split-worker",
  vars: { ADMIN_TOKEN: randomBytes(24).toString("base64url"), STUDENT_PERCENT: "100", SHADOW_PERCENT: "0" },
});
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
const png = readFileSync("samples/ankle-boot.png");
const infer = JSON.stringify({
  inputs: [
    {
      name: "input",
      shape: [1, 1, 28, 28],
      datatype: "FP32",
      data: Array.from({ length: 784 }, (_, i) => Math.sin(i)),
    },
  ],
});
let n = 0;
type Requests = NonNullable<Parameters<typeof autocannon>[0]["requests"]>;
const kinds: [string, Requests][] = [
  [
    "OIP infer (no D1)",
    [
      {
        method: "POST",
        path: "/v2/models/narrow-deep/infer",
        headers: { "content-type": "application/json" },
        body: infer,
      },
    ],
  ],
  [
    "named classify, PNG (no D1)",
    [{ method: "POST", path: "/v1/models/narrow-deep/classify", headers: { "content-type": "image/png" }, body: png }],
  ],
  [
    "routed classify, PNG (a D1 row each, through the queue)",
    [
      {
        method: "POST",
        path: "/v1/classify",
        setupRequest: (r: RequestSpec) => ({
          ...r,
          body: png,
          headers: { "content-type": "image/png", "x-client-id": `c${n++ % 2000}` },
        }),
      },
    ],
  ],
];
const drive = (requests: Requests) =>
  new Promise<void>((resolve, reject) =>
    autocannon({ url: s.workerUrl, connections: 32, amount: BATCH, requests }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );

try {
  console.log("kind | requests | workerd RSS (MB) | isolate heap after GC (MB) | isolate WASM (MB)");
  for (const [label, requests] of kinds) {
    for (let i = 1; i <= rounds; i++) {
      await drive(requests);
      // Sampled while idle: a sample collects garbage in the isolate.
      const isolate = await s.isolate.sample();
      console.log(
        `${label} | +${i * BATCH} | ${mb(s.workerdMemory().worker)} | ${mb(isolate.heapBytes)} | ${mb(isolate.wasmBytes)}`,
      );
    }
  }
} finally {
  await s.stop();
}
