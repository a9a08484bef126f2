// A multi-label student (sigmoid probabilities, manifest outputActivation "sigmoid") in the Worker:
// /v2 answers each class's own probability as onnxruntime-node does, and /v1/classify lists the
// labels at or above ?threshold= (0.5 by default), most probable first, capped by ?k= when given.
import { describe, expect, it } from "vitest";
import { fixtureApp, fixtures, inferBody, jpegs, postJson } from "./helpers.ts";

interface Prediction {
  label: string;
  index: number;
  probability: number;
}

const app = fixtureApp();
const ref = fixtures.references.find((r) => r.model === "tags28")!;
const classify = async (query: string) => {
  const res = await app.request(`/v1/models/tags28/classify${query}`, {
    method: "POST",
    headers: { "Content-Type": "image/jpeg" },
    body: jpegs.gradient!,
  });
  return {
    status: res.status,
    body: (await res.json()) as { multiLabel?: boolean; threshold?: number; predictions: Prediction[]; error?: string },
  };
};

describe("a multi-label student in the Worker", () => {
  it("answers per-class sigmoid probabilities, as onnxruntime-node does", async () => {
    const res = await postJson(app, "/v2/models/tags28/infer", inferBody("tags28", ref.dims, ref.input));
    expect(res.status).toBe(200);
    const outputs = ((await res.json()) as { outputs: { name: string; data: number[] }[] }).outputs;
    const probabilities = outputs.find((o) => o.name === "probabilities")!.data;
    const logits = outputs.find((o) => o.name === "logits")!.data;
    probabilities.forEach((p, i) => {
      expect(p).toBeCloseTo(ref.probabilities[i]!, 5);
      expect(p).toBeCloseTo(1 / (1 + Math.exp(-logits[i]!)), 5); // each class on its own, not a softmax
    });
  });

  it("lists the labels at or above the threshold, most probable first", async () => {
    const all = await classify("?threshold=0");
    expect(all.status).toBe(200);
    expect(all.body.multiLabel).toBe(true);
    expect(all.body.predictions).toHaveLength(4); // every label, since all are >= 0
    const probs = all.body.predictions.map((p) => p.probability);
    expect(probs).toEqual([...probs].sort((a, b) => b - a));
    const byDefault = await classify("");
    expect(byDefault.body.threshold).toBe(0.5);
    expect(byDefault.body.predictions).toEqual(all.body.predictions.filter((p) => p.probability >= 0.5));
    const middle = probs[1]!;
    const some = await classify(`?threshold=${middle}`);
    expect(some.body.predictions.map((p) => p.label)).toEqual(all.body.predictions.slice(0, 2).map((p) => p.label));
    expect((await classify("?threshold=0&k=1")).body.predictions).toEqual(all.body.predictions.slice(0, 1));
  });

  it("refuses a threshold outside [0, 1]", async () => {
    for (const bad of ["1.5", "-0.1", "abc", "NaN"]) {
      const r = await classify(`?threshold=${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.error).toMatch(/threshold must be a number from 0 to 1/);
    }
  });
});
