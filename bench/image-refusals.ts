// How long the image decoder (models/image/, which the Worker and training share) takes to refuse each
// crafted file (test/src/crafted-images.ts: an iCCP inflating to 200 MB, a second IHDR claiming
// 12000x12000 RGBA, 150,000 text chunks, a JPEG of 156,000 scans), beside the time it takes to decode
// the largest honest uploads (test/src/setup/max-uploads.ts), under the Worker's default limits, in
// this Node's V8 (workerd's engine). End to end through workerd, with the isolate's memory, the same
// files are measured by test/src/memory.node.test.ts.
//
//   npx tsx bench/image-refusals.ts [--runs 20] [--decoder path/to/decode.ts]
//
// --decoder times another copy of decode.ts (for instance an earlier commit's, from `git archive`), so
// a change can be measured before and after with the same files and loop.
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { decodeImage as DecodeImage } from "../models/image/decode.ts";
import { DEFAULT_LIMITS } from "../src/options.ts";
import { imageLimits } from "../src/routes/context.ts";
import { craftedImages } from "../test/src/crafted-images.ts";
import { maxJpeg, maxPng } from "../test/src/setup/max-uploads.ts";
import { stats } from "./timing.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "20" }, decoder: { type: "string" } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not "${values.runs}"`);
const { decodeImage } = (await import(values.decoder ? resolve(values.decoder) : "../models/image/decode.ts")) as {
  decodeImage: typeof DecodeImage;
};
const limits = imageLimits(DEFAULT_LIMITS);

/** The answer the Worker would give: 200, or the refusal's status and message. */
async function outcome(bytes: Uint8Array): Promise<string> {
  try {
    await decodeImage(bytes, limits);
    return "200";
  } catch (err) {
    const status = (err as { status?: number }).status;
    return `${status ?? "thrown"} ${(err as Error).message}`;
  }
}

const files = [
  ...craftedImages().map((c) => ({ name: c.name, bytes: c.bytes })),
  ...[maxPng(DEFAULT_LIMITS), maxJpeg(DEFAULT_LIMITS)].map((u) => ({
    name: `honest ${u.kind} ${u.width}x${u.height}`,
    bytes: u.bytes,
  })),
];
console.log(
  `decoder ${values.decoder ?? "models/image/decode.ts"}, ${runs} runs a file after one untimed, limits ${JSON.stringify(limits)}`,
);
for (const file of files) {
  const answer = await outcome(file.bytes);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await outcome(file.bytes);
    times.push(performance.now() - t);
  }
  const s = stats(times);
  console.log(
    `${file.name} (${file.bytes.length} bytes): median ${s.median.toFixed(2)} ms, max ${Math.max(...times).toFixed(2)} ms; ${answer.slice(0, 160)}`,
  );
}
