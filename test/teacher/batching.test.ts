// Dynamic batching on real onnxruntime-node sessions: the Batcher on the fixture teacher (rows split
// back to their requests, equal to each request run alone; a request the runtime refuses fails alone;
// the size cap, the window, and no window when nobody else is coming), then a real host: concurrent requests run as one batch, answers equal
// to onnxruntime-node on each input, malformed requests refused alone, --max-batch caps and turns off.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelEntry } from "../../models/schema.ts";
import { Batcher, splitRows } from "../../teacher/batching.ts";
import { nodeEngine } from "../../teacher/engine.ts";
import { type TeacherProcess, launchTeacher } from "../../teacher/launch.ts";
import type { Session } from "../../src/models/engine.ts";
import { newTeacherToken, writeTeacherModels } from "../src/setup/teacher.ts";
import { Scrape } from "./scrape.ts";

let dir: string;
let manifestPath: string;
let teacher: ModelEntry;
let session: Session;
let direct: ort.InferenceSession;
const token = newTeacherToken();
const hosts: TeacherProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "narrowdeep-batching-"));
  ({ manifestPath, teacher } = await writeTeacherModels(dir));
  const bytes = readFileSync(join(dir, teacher.file));
  session = await nodeEngine("cpu").createSession(bytes, teacher);
  direct = await ort.InferenceSession.create(bytes);
});
afterAll(async () => {
  await Promise.all(hosts.map((h) => h.stop()));
  await direct?.release();
  rmSync(dir, { recursive: true, force: true });
});

/** `n` distinct images, row-major. */
function images(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n * 784 }, (_, i) => Math.sin(seed * 3.7 + i * 0.013) + Math.cos(i * 0.41 + seed));
}

/** onnxruntime-node on the input alone: what every batched answer must equal. */
async function alone(input: Float32Array): Promise<Record<string, Float32Array>> {
  const out = await direct.run({ input: new ort.Tensor("float32", input, [input.length / 784, 1, 28, 28]) });
  return { logits: out.logits!.data as Float32Array, probabilities: out.probabilities!.data as Float32Array };
}

function expectClose(got: ArrayLike<number>, want: Float32Array): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-4);
}

/** The session, counting its runs and the images in each. */
function counted(): { session: Session; runs: number[] } {
  const runs: number[] = [];
  return {
    runs,
    session: {
      run: (input, dims) => {
        runs.push(dims[0]!);
        return session.run(input, dims);
      },
    },
  };
}

describe("Batcher", () => {
  it("runs requests that arrive together as one batch and gives each its own rows", async () => {
    const { session: s, runs } = counted();
    const batcher = new Batcher(s, { maxBatch: 32, windowMs: 50 });
    const inputs = [images(1, 1), images(3, 2), images(2, 3)];
    const results = await Promise.all(inputs.map((x) => batcher.run(x, [x.length / 784, 1, 28, 28])));
    expect(runs).toEqual([6]);
    for (const [i, x] of inputs.entries()) {
      const want = await alone(x);
      expect(results[i]!.get("logits")!.dims).toEqual([x.length / 784, 10]);
      expectClose(results[i]!.get("logits")!.data, want.logits!);
      expectClose(results[i]!.get("probabilities")!.data, want.probabilities!);
    }
  });

  it("keeps a request the runtime refuses to itself: its batch-mates are answered", async () => {
    const { session: s, runs } = counted();
    const batcher = new Batcher(s, { maxBatch: 32, windowMs: 50 });
    const good = [images(1, 4), images(2, 5)];
    // 700 values where 784 are declared: the runtime refuses it (the host's parser never would let it by).
    const bad = new Float32Array(700);
    const settled = await Promise.allSettled([
      batcher.run(good[0]!, [1, 1, 28, 28]),
      batcher.run(bad, [1, 1, 28, 28]),
      batcher.run(good[1]!, [2, 1, 28, 28]),
    ]);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    // The batch of 4 failed, then each ran alone.
    expect(runs).toEqual([4, 1, 1, 2]);
    for (const [i, j] of [
      [0, 0],
      [2, 1],
    ] as const) {
      const got = (settled[i] as PromiseFulfilledResult<Map<string, { data: Float32Array }>>).value;
      expectClose(got.get("logits")!.data, (await alone(good[j]!)).logits!);
    }
  });

  it("caps a batch at maxBatch images, and runs a larger request alone", async () => {
    const { session: s, runs } = counted();
    const batcher = new Batcher(s, { maxBatch: 4, windowMs: 50 });
    const sizes = [1, 1, 1, 1, 1, 1, 6];
    await Promise.all(sizes.map((n, i) => batcher.run(images(n, i), [n, 1, 28, 28])));
    expect(runs).toEqual([4, 2, 6]);
  });

  it("does not wait for the window once maxBatch images are in", async () => {
    const batcher = new Batcher(session, { maxBatch: 2, windowMs: 60_000 });
    const started = performance.now();
    await Promise.all([batcher.run(images(1, 1), [1, 1, 28, 28]), batcher.run(images(1, 2), [1, 1, 28, 28])]);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it("skips the window when no other request is on its way, and waits it out while one is", async () => {
    let arriving = 0;
    const { session: s, runs } = counted();
    const batcher = new Batcher(s, { maxBatch: 32, windowMs: 60_000, arriving: () => arriving });
    const started = performance.now();
    await batcher.run(images(1, 1), [1, 1, 28, 28]);
    expect(performance.now() - started).toBeLessThan(10_000);
    arriving = 1;
    const first = batcher.run(images(1, 2), [1, 1, 28, 28]);
    await new Promise((r) => setTimeout(r, 300));
    expect(batcher.waiting).toBe(1); // held for the one on its way
    arriving = 0;
    const second = batcher.run(images(1, 3), [1, 1, 28, 28]);
    await Promise.all([first, second]);
    expect(runs).toEqual([1, 2]);
  });

  it("splits outputs by rows, and refuses an output without a batch dimension", () => {
    const out = new Map([["y", { dims: [3, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }]]);
    const [a, b] = splitRows(out, [1, 2]);
    expect(Array.from(a!.get("y")!.data)).toEqual([1, 2]);
    expect(b!.get("y")!.dims).toEqual([2, 2]);
    expect(Array.from(b!.get("y")!.data)).toEqual([3, 4, 5, 6]);
    expect(() => splitRows(new Map([["y", { dims: [10], data: new Float32Array(10) }]]), [1, 2])).toThrow(
      /cannot be split by request/,
    );
  });
});

describe("a teacher host with batching", () => {
  async function start(args: string[]): Promise<TeacherProcess> {
    const h = await launchTeacher({
      args: ["--manifest", manifestPath, "--port", "0", "--provider", "cpu", ...args],
      env: { TEACHER_TOKEN: token },
    });
    hosts.push(h);
    return h;
  }
  const infer = (url: string, body: string) =>
    fetch(`${url}/v2/models/teacher28/infer`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body,
    });
  const request = (x: Float32Array) =>
    JSON.stringify({
      inputs: [{ name: "input", shape: [x.length / 784, 1, 28, 28], datatype: "FP32", data: Array.from(x) }],
    });

  it("answers concurrent requests from shared runs, each as onnxruntime-node answers its input; malformed ones are refused alone", async () => {
    const h = await start(["--max-batch", "32", "--batch-window-ms", "300"]);
    const inputs = [1, 2, 1, 3, 1, 1].map((n, i) => images(n, 10 + i));
    const malformed = [
      "{not json",
      JSON.stringify({
        inputs: [{ name: "input", shape: [1, 1, 28, 27], datatype: "FP32", data: new Array(756).fill(0) }],
      }),
      JSON.stringify({
        inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: [...new Array(783).fill(0), "x"] }],
      }),
    ];
    const bodies = [...inputs.map(request), ...malformed];
    // Interleaved, so the malformed ones arrive among the good ones.
    const order = [0, 6, 1, 2, 7, 3, 4, 8, 5];
    const responses = await Promise.all(order.map((i) => infer(h.url, bodies[i]!)));
    for (const [k, i] of order.entries()) {
      const res = responses[k]!;
      if (i >= inputs.length) {
        expect(res.status).toBe(400);
        expect(Object.keys((await res.json()) as object)).toEqual(["error"]);
        continue;
      }
      expect(res.status).toBe(200);
      const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
      const want = await alone(inputs[i]!);
      for (const o of body.outputs) {
        expect(o.shape).toEqual([inputs[i]!.length / 784, 10]);
        expectClose(o.data, want[o.name]!);
      }
    }
    const batches = (await Scrape.of(h.url, token)).histogram("teacher_batch_size");
    expect(batches.sum).toBe(9); // the good requests' images, none of the malformed
    expect(batches.count).toBeLessThan(inputs.length);
  });

  it("never runs more than --max-batch images at once", async () => {
    const h = await start(["--max-batch", "4", "--batch-window-ms", "300"]);
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => infer(h.url, request(images(1, i)))));
    expect(responses.map((r) => r.status)).toEqual(new Array(12).fill(200));
    const batches = (await Scrape.of(h.url, token)).histogram("teacher_batch_size");
    expect(batches.sum).toBe(12);
    expect(batches.buckets["4"]).toBe(batches.count);
    expect(batches.count).toBeGreaterThanOrEqual(3);
  });

  it("runs every request on its own with --max-batch 1", async () => {
    const h = await start(["--max-batch", "1", "--batch-window-ms", "300"]);
    const responses = await Promise.all(Array.from({ length: 6 }, (_, i) => infer(h.url, request(images(1, i)))));
    expect(responses.map((r) => r.status)).toEqual(new Array(6).fill(200));
    const batches = (await Scrape.of(h.url, token)).histogram("teacher_batch_size");
    expect(batches.count).toBe(6);
    expect(batches.sum).toBe(6);
  });

  it("names a bad batching flag", async () => {
    const fails = async (args: string[]) => {
      try {
        await start(args);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error(`started with ${args.join(" ")}`);
    };
    expect(await fails(["--max-batch", "0"])).toMatch(/max-batch must be an integer from 1 to 4096, got "0"/);
    expect(await fails(["--batch-window-ms", "fast"])).toMatch(
      /batch-window-ms must be an integer from 0 to 1000, got "fast"/,
    );
  });
});
