// The Worker's logits equal onnxruntime-node's on the same model and input (within 1e-4).
import { describe, expect, it } from "vitest";
import { fixtureApp, fixtures, inferBody, postJson } from "./helpers.ts";

const TOLERANCE = 1e-4;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe("parity with onnxruntime-node", () => {
  const app = fixtureApp();
  for (const ref of fixtures.references) {
    it(`${ref.model}, batch ${ref.dims[0]}`, async () => {
      const res = await postJson(app, `/v2/models/${ref.model}/infer`, inferBody(ref.model, ref.dims, ref.input));
      expect(res.status).toBe(200);
      const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
      const logits = body.outputs.find((o) => o.name === "logits")!;
      const probabilities = body.outputs.find((o) => o.name === "probabilities")!;
      expect(logits.shape).toEqual([ref.dims[0], 10]);
      expect(maxAbsDiff(logits.data, ref.logits)).toBeLessThan(TOLERANCE);
      expect(maxAbsDiff(probabilities.data, ref.probabilities)).toBeLessThan(TOLERANCE);
    });
  }
});
