// The teacher host as a real process on loopback: what it says at start, its Open Inference Protocol
// answers against onnxruntime-node run directly, its refusals, and its fault-injection flags. Every
// host checks a token (TEACHER_TOKEN); hardening.test.ts covers the token, body limit and flood.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelEntry } from "../../models/schema.ts";
import { type TeacherProcess, launchTeacher } from "../../teacher/launch.ts";
import { newTeacherToken, writeTeacherModels } from "../src/setup/teacher.ts";

let dir: string;
let manifestPath: string;
let teacher: ModelEntry;
let host: TeacherProcess;
const log: string[] = [];
const token = newTeacherToken();
const env = { TEACHER_TOKEN: token };
const auth = { Authorization: `Bearer ${token}` };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "narrowdeep-host-"));
  ({ manifestPath, teacher } = await writeTeacherModels(dir));
  host = await launchTeacher({ args: ["--manifest", manifestPath, "--port", "0"], env, log: (l) => log.push(l) });
});
afterAll(async () => {
  await host?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function input(seed: number): Float32Array {
  return Float32Array.from({ length: 784 }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
}

const infer = (url: string, body: unknown, model = "teacher28") =>
  fetch(`${url}/v2/models/${model}/infer`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...auth },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
const get = (url: string) => fetch(url, { headers: auth });

/** Starts a host expected to fail; resolves with what it said. */
async function refusal(args: string[], environment: Record<string, string> = env): Promise<string> {
  try {
    const h = await launchTeacher({ args, env: environment, startTimeoutMs: 30_000 });
    await h.stop();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`the host started with ${args.join(" ")}`);
}

describe("a teacher host", () => {
  it("says at start which model it serves and on which execution provider, and so does its metadata", async () => {
    const line = log.find((l) => l.startsWith('teacher: model "teacher28"'));
    expect(line).toMatch(/ on (CUDA|CPU)$/);
    const provider = line!.endsWith("CUDA") ? "cuda" : "cpu";
    if (provider === "cpu") expect(log.some((l) => l.startsWith("teacher: CUDA unavailable"))).toBe(true);
    const res = await get(`${host.url}/v2/models/teacher28`);
    expect(res.headers.get("X-Execution-Provider")).toBe(provider);
    expect(await res.json()).toEqual({
      name: "teacher28",
      versions: ["1"],
      platform: "onnxruntime_onnx",
      inputs: [{ name: "input", datatype: "FP32", shape: [-1, 1, 28, 28] }],
      outputs: [
        { name: "logits", datatype: "FP32", shape: [-1, 10] },
        { name: "probabilities", datatype: "FP32", shape: [-1, 10] },
      ],
      parameters: { execution_provider: provider },
    });
  });

  it("listens on loopback and is live and ready", async () => {
    expect(new URL(host.url).hostname).toBe("127.0.0.1");
    expect(await (await fetch(`${host.url}/v2/health/live`)).json()).toEqual({ live: true });
    expect(await (await fetch(`${host.url}/v2/health/ready`)).json()).toEqual({ ready: true });
    expect(await (await get(`${host.url}/v2/models/teacher28/ready`)).json()).toEqual({
      name: "teacher28",
      ready: true,
    });
    expect(((await (await get(`${host.url}/v2`)).json()) as { name: string }).name).toBe("narrowdeep-teacher");
  });

  it("answers inference as onnxruntime-node does on the same file", async () => {
    const x = new Float32Array([...input(1), ...input(2)]);
    const res = await infer(host.url, {
      id: "r1",
      inputs: [{ name: "input", shape: [2, 1, 28, 28], datatype: "FP32", data: Array.from(x) }],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      id: string;
      model_name: string;
      outputs: { name: string; shape: number[]; data: number[] }[];
    };
    expect(body.id).toBe("r1");
    expect(body.model_name).toBe("teacher28");
    const session = await ort.InferenceSession.create(join(dir, teacher.file));
    const direct = await session.run({ input: new ort.Tensor("float32", x, [2, 1, 28, 28]) });
    for (const name of ["logits", "probabilities"]) {
      const out = body.outputs.find((o) => o.name === name)!;
      expect(out.shape).toEqual([2, 10]);
      const want = direct[name]!.data as Float32Array;
      out.data.forEach((v, i) => {
        expect(v).toBeCloseTo(want[i]!, 5);
      });
    }
    await session.release();
  });

  it("refuses bad requests with a 4xx JSON error and no internals", async () => {
    const cases: [Response, number, RegExp][] = [
      [
        await infer(host.url, { inputs: [{ name: "input", shape: [1, 1, 28, 27], datatype: "FP32", data: [] }] }),
        400,
        /shape is \[1, 1, 28, 27\]/,
      ],
      [await infer(host.url, "{not json"), 400, /malformed JSON/],
      [await infer(host.url, { inputs: [] }, "nope"), 404, /unknown model "nope"/],
      [await get(`${host.url}/v3`), 404, /no route/],
    ];
    for (const [res, status, message] of cases) {
      expect(res.status).toBe(status);
      const body = (await res.json()) as Record<string, string>;
      expect(Object.keys(body)).toEqual(["error"]);
      expect(body.error).toMatch(message);
      expect(body.error).not.toMatch(/\.ts\b|node_modules|\n\s+at /);
    }
  });
});

describe("starting a teacher host", () => {
  it("refuses a model file whose sha256 differs from the manifest's", async () => {
    const other = mkdtempSync(join(tmpdir(), "narrowdeep-tampered-"));
    try {
      const { manifestPath: m, teacher: t } = await writeTeacherModels(other);
      const path = join(other, t.file);
      copyFileSync(join(other, "grey28.onnx"), path); // a valid ONNX file, but not the one listed
      const message = await refusal(["--manifest", m, "--port", "0"]);
      expect(message).toMatch(/exited \(code 2\)/);
      expect(message).toMatch(
        /teacher28\.onnx has \d+ bytes, the manifest says \d+|sha256 [0-9a-f]{64}, the manifest says/,
      );
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("names what is wrong with its flags, manifest or model choice", async () => {
    expect(await refusal(["--port", "http"])).toMatch(/port must be an integer from 0 to 65535, got "http"/);
    expect(await refusal(["--provider", "tpu", "--manifest", manifestPath])).toMatch(
      /provider must be auto, cuda or cpu, got "tpu"/,
    );
    expect(await refusal(["--colour", "red"])).toMatch(
      /Unknown option '--colour'[\s\S]*usage: TEACHER_TOKEN=\.\.\. npm run teacher/,
    );
    expect(await refusal(["--manifest", join(dir, "missing.json")])).toMatch(/cannot read .*missing\.json/);
    expect(await refusal(["--manifest", manifestPath, "--model", "nope"])).toMatch(
      /model "nope" is not in .*manifest\.json \(it has: grey28, rgb32, grey28-int8, tags28, teacher28\)/,
    );
    const broken = join(dir, "broken.json");
    writeFileSync(broken, JSON.stringify({ schemaVersion: 1, defaultStudent: "x", models: [{ name: "x" }] }));
    // The first field the manifest schema finds wrong, in the entry's field order.
    expect(await refusal(["--manifest", broken])).toMatch(/manifest models\[0\]\.version: must be a non-empty string/);
  });

  it("uses the CPU when asked, and says so", async () => {
    const lines: string[] = [];
    const h = await launchTeacher({
      args: ["--manifest", manifestPath, "--port", "0", "--provider", "cpu"],
      env,
      log: (l) => lines.push(l),
    });
    try {
      expect(lines).toContain(
        `teacher: model "teacher28" version 1 (teacher28.onnx, sha256 ${teacher.sha256.slice(0, 12)}…) on CPU`,
      );
      expect(lines.some((l) => l.includes("CUDA unavailable"))).toBe(false);
      expect((await get(`${h.url}/v2/models/teacher28`)).headers.get("X-Execution-Provider")).toBe("cpu");
    } finally {
      await h.stop();
    }
  });

  it("stops on SIGTERM with exit code 0", async () => {
    const h = await launchTeacher({ args: ["--manifest", manifestPath, "--port", "0"], env });
    await h.stop();
    expect(h.child.exitCode).toBe(0);
    await expect(fetch(`${h.url}/v2/health/live`)).rejects.toThrow();
  });
});

describe("fault injection", () => {
  it("--fault-garbage answers inference with bodies that are not inference responses, health stays true", async () => {
    const h = await launchTeacher({ args: ["--manifest", manifestPath, "--port", "0", "--fault-garbage"], env });
    try {
      expect((await fetch(`${h.url}/v2/health/ready`)).status).toBe(200);
      const req = { inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: Array.from(input(3)) }] };
      // One at a time: the host serves its three kinds of garbage in turn, so concurrent requests
      // could meet them in any order.
      const bodies: string[] = [];
      for (let i = 0; i < 3; i++) bodies.push(await (await infer(h.url, req)).text());
      expect(() => JSON.parse(bodies[0]!)).toThrow();
      expect(JSON.parse(bodies[1]!).outputs).toEqual([]);
      expect(JSON.parse(bodies[2]!).outputs[0].data).toContain("x");
    } finally {
      await h.stop();
    }
  });

  it("--fault-delay-ms holds inference answers back", async () => {
    const h = await launchTeacher({
      args: ["--manifest", manifestPath, "--port", "0", "--fault-delay-ms", "400"],
      env,
    });
    try {
      const req = { inputs: [{ name: "input", shape: [1, 1, 28, 28], datatype: "FP32", data: Array.from(input(4)) }] };
      const started = performance.now();
      expect((await infer(h.url, req)).status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(400);
    } finally {
      await h.stop();
    }
  });
});
