// An int8 (QDQ) student served by name like any other: onnxruntime-web in workerd runs its integer
// kernels, and its answers must match onnxruntime-node running the same file with the Q/DQ nodes kept.
import { describe, expect, it } from "vitest";
import { fixtureApp, fixtures, inferBody, jpegs, postJson } from "./helpers.ts";

interface InferReply {
  model_name: string;
  outputs: { name: string; shape: number[]; data: number[] }[];
}

const app = fixtureApp();
const int8 = fixtures.references.find((r) => r.model === "grey28-int8")!;
const fp32 = fixtures.references.find((r) => r.model === "grey28" && r.dims[0] === 3)!;

async function logitsOf(model: string, dims: number[], input: number[]): Promise<number[]> {
  const res = await postJson(app, `/v2/models/${model}/infer`, inferBody(model, dims, input));
  expect(res.status).toBe(200);
  const body = (await res.json()) as InferReply;
  expect(body.model_name).toBe(model);
  return body.outputs.find((o) => o.name === "logits")!.data;
}

const maxAbs = (v: number[]) => Math.max(...v.map(Math.abs));
const argmaxRows = (v: number[], classes: number) =>
  Array.from({ length: v.length / classes }, (_, r) =>
    v.slice(r * classes, (r + 1) * classes).reduce((best, x, i, row) => (x > row[best]! ? i : best), 0),
  );

describe("an int8 student in the Worker", () => {
  it("describes itself as the fp32 one does: FP32 in, FP32 out", async () => {
    const res = await app.request("/v2/models/grey28-int8");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      name: "grey28-int8",
      inputs: [{ name: "input", datatype: "FP32", shape: [-1, 1, 28, 28] }],
      outputs: [
        { name: "logits", datatype: "FP32", shape: [-1, 10] },
        { name: "probabilities", datatype: "FP32", shape: [-1, 10] },
      ],
    });
    expect((await app.request("/v2/models/grey28-int8/ready")).status).toBe(200);
  });

  it("answers what onnxruntime-node computes from the same file, to within the kernels' requantization", async () => {
    expect(int8.input).toEqual(fp32.input); // one input for both models
    const logits = await logitsOf("grey28-int8", int8.dims, int8.input);
    // The integer kernels requantize each layer's output in integers where the Q/DQ reference rounds
    // in float: a step of some uint8 grid now and then (1e-7 here; 0.8% of the logits on a trained
    // 51-convolution student over 1,000 images).
    const diff = logits.map((v, i) => v - int8.logits[i]!);
    expect(maxAbs(diff)).toBeLessThanOrEqual(0.01 * maxAbs(int8.logits));
    expect(argmaxRows(logits, 10)).toEqual(argmaxRows(int8.logits, 10));
    // And it is not the fp32 model: its logits carry the quantization error (1.2% here), and stay near.
    const fromFp32 = logits.map((v, i) => v - fp32.logits[i]!);
    expect(maxAbs(fromFp32)).toBeGreaterThan(1e-4);
    expect(maxAbs(fromFp32)).toBeLessThanOrEqual(0.05 * maxAbs(fp32.logits));
  });

  it("classifies an image by name", async () => {
    const res = await app.request("/v1/models/grey28-int8/classify?k=3", {
      method: "POST",
      headers: { "Content-Type": "image/jpeg" },
      body: jpegs.gradient!,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Model-Name")).toBe("grey28-int8");
    const body = (await res.json()) as { model: { name: string }; predictions: { probability: number }[] };
    expect(body.model.name).toBe("grey28-int8");
    expect(body.predictions).toHaveLength(3);
    expect(body.predictions[0]!.probability).toBeGreaterThan(0);
  });
});
