// training/export/quantize.ts: the quantization arithmetic, and the QDQ rewrite of an exported model.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../../../training/engine/backend.ts";
import { runOnnxChecker } from "../../../training/export/checker.ts";
import { openInt8Session } from "../../../training/export/int8.ts";
import { graphToOnnx } from "../../../training/model/to-onnx.ts";
import { type DecodedModel, decodeModel, encodeModel, floatValues } from "../../../training/onnx/proto.ts";
import {
  type Range,
  WEIGHT_FORMATS,
  activationParams,
  describeWeights,
  planQdq,
  quantizeBias,
  quantizeWeights,
  toQdq,
} from "../../../training/export/quantize.ts";
import { fixtureCheckpoint } from "./fixtures.ts";

describe("activationParams", () => {
  it("maps the range, widened to hold 0, onto uint8 with 0 exact", () => {
    const p = activationParams({ min: -1, max: 3 });
    expect(p.scale).toBeCloseTo(4 / 255, 7);
    expect(p.zeroPoint).toBe(64); // round(1 / (4/255)) = round(63.75)
    expect(activationParams({ min: 2, max: 5 })).toEqual({ scale: Math.fround(5 / 255), zeroPoint: 0 });
    expect(activationParams({ min: -6, max: -2 })).toEqual({ scale: Math.fround(6 / 255), zeroPoint: 255 });
    expect(activationParams({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it("refuses a range that is not a finite interval, naming the tensor", () => {
    expect(() => activationParams({ min: Number.NaN, max: 1 }, "stem.relu")).toThrow(
      /stem\.relu: calibrated range \[NaN, 1\] is not a finite interval/,
    );
    expect(() => activationParams({ min: 2, max: 1 }, "x")).toThrow(/x: calibrated range \[2, 1\]/);
  });
});

describe("quantizeWeights", () => {
  it("gives each output channel its own symmetric scale, along the axis asked for", () => {
    // [2, 3]: along axis 0 the channels are the rows, along axis 1 the columns.
    const w = Float32Array.of(1, -0.5, 0.25, 0.01, 0.03, -0.04);
    const rows = quantizeWeights(w, [2, 3], 0, WEIGHT_FORMATS.int8);
    expect(Array.from(rows.scales)).toEqual([Math.fround(1 / 127), Math.fround(0.04 / 127)]);
    expect(Array.from(rows.q)).toEqual([127, -64, 32, 32, 95, -127]);
    const cols = quantizeWeights(w, [2, 3], 1, WEIGHT_FORMATS.int8);
    expect(Array.from(cols.scales)).toEqual([Math.fround(1 / 127), Math.fround(0.5 / 127), Math.fround(0.25 / 127)]);
    expect(Array.from(cols.q)).toEqual([127, -127, 127, 1, 8, -20]);
  });

  it("keeps every weight within half a step, and an all-zero channel at zero", () => {
    const dims = [4, 3, 3, 3];
    const w = Float32Array.from({ length: 108 }, (_, i) => (i < 27 ? 0 : Math.sin(i * 1.7) * (i % 27 === 5 ? 3 : 0.2)));
    const { q, scales } = quantizeWeights(w, dims, 0, WEIGHT_FORMATS.int8);
    expect(scales[0]).toBe(1);
    for (let i = 0; i < w.length; i++) {
      const s = scales[Math.floor(i / 27)]!;
      expect(Math.abs(q[i]!)).toBeLessThanOrEqual(127);
      expect(Math.abs(q[i]! * s - w[i]!)).toBeLessThanOrEqual(s / 2 + 1e-9);
    }
  });

  it("stores 7-bit weights in [-64, 64], so that two uint8 x int8 products always fit int16", () => {
    const w = Float32Array.of(1, -0.5, 0.25, 0.01, 0.03, -0.04);
    const { q, scales } = quantizeWeights(w, [2, 3], 0, WEIGHT_FORMATS.int7);
    expect(Array.from(scales)).toEqual([Math.fround(1 / 64), Math.fround(0.04 / 64)]);
    expect(Array.from(q)).toEqual([64, -32, 16, 16, 48, -64]);
    expect(2 * 255 * WEIGHT_FORMATS.int7.max).toBeLessThanOrEqual(2 ** 15 - 1);
    expect(2 * 255 * WEIGHT_FORMATS.int8.max).toBeGreaterThan(2 ** 15 - 1);
  });

  it("stores uint8 weights around zero point 128, as symmetric as int8", () => {
    const w = Float32Array.of(1, -0.5, 0.25, 0.01, 0.03, -0.04);
    const int8 = quantizeWeights(w, [2, 3], 0, WEIGHT_FORMATS.int8);
    const uint8 = quantizeWeights(w, [2, 3], 0, WEIGHT_FORMATS.uint8);
    expect(uint8.scales).toEqual(int8.scales);
    expect(Array.from(uint8.q)).toEqual(Array.from(int8.q, (v) => v + 128));
    expect(Math.min(...uint8.q)).toBe(1);
    expect(Math.max(...uint8.q)).toBe(255);
  });

  it("describes each format in words for the manifest", () => {
    expect(describeWeights("int8")).toBe("int8 in [-127, 127], symmetric, per output channel");
    expect(describeWeights("int7")).toBe("int8 in [-64, 64], symmetric, per output channel");
    expect(describeWeights("uint8")).toBe("uint8 in 128 + [-127, 127], symmetric, per output channel");
  });

  it("refuses weights that are not finite", () => {
    expect(() => quantizeWeights(Float32Array.of(1, Number.POSITIVE_INFINITY), [2], 0)).toThrow(
      /weight value Infinity at index 1 is not finite/,
    );
  });
});

describe("quantizeBias", () => {
  it("rounds to int32 at input scale x weight scale per channel, and refuses what int32 cannot hold", () => {
    const { q, scales } = quantizeBias(Float32Array.of(0.5, -0.25), 0.1, Float32Array.of(0.01, 0.02), "conv.bias");
    expect(Array.from(scales)).toEqual([
      Math.fround(Math.fround(0.1) * Math.fround(0.01)),
      Math.fround(Math.fround(0.1) * Math.fround(0.02)),
    ]);
    expect(Array.from(q)).toEqual([500, -125]);
    expect(() => quantizeBias(Float32Array.of(1e6), 1e-3, Float32Array.of(1e-6), "conv.bias")).toThrow(
      /conv\.bias\[0\] = 1000000 does not fit int32/,
    );
  });
});

/** onnx.load's view of a model's nodes and initializer types (Debian's python3-onnx). */
function pythonView(bytes: Uint8Array): { ops: string[]; types: Record<string, number> } {
  const file = join(mkdtempSync(join(tmpdir(), "qdq-")), "m.onnx");
  writeFileSync(file, bytes);
  const py = spawnSync(
    "/usr/bin/python3",
    [
      "-c",
      "import onnx,sys,json; m=onnx.load(sys.argv[1]); print(json.dumps({'ops':[n.op_type for n in m.graph.node],'types':{t.name:t.data_type for t in m.graph.initializer}}))",
      file,
    ],
    { encoding: "utf8" },
  );
  if (py.status !== 0) throw new Error(py.stderr);
  return JSON.parse(py.stdout);
}

/** The distinct int32 values of a tensor's raw bytes. */
const view = (t: { rawData?: Uint8Array }) => new Set(new Int32Array(Uint8Array.from(t.rawData!).buffer));

/** Logits of a model on the same inputs, in onnxruntime-node. */
async function logits(session: ort.InferenceSession, input: Float32Array, n: number): Promise<Float32Array> {
  const out = await session.run({ input: new ort.Tensor("float32", input, [n, 1, 28, 28]) }, ["logits"]);
  return out.logits!.data as Float32Array;
}

describe("planQdq and toQdq on an exported student", () => {
  let fp32: Uint8Array;
  let model: DecodedModel;
  const inputs = Float32Array.from({ length: 16 * 784 }, (_, i) => Math.sin(i * 0.37) * 1.4 + 0.3);

  beforeAll(async () => {
    await initBackend("wasm", { log: () => {} });
    const ckpt = fixtureCheckpoint({ architecture: "narrow-deep", widthScale: 0.5 });
    fp32 = graphToOnnx(
      { graph: ckpt.graph, tensors: new Map([...ckpt.weights].map(([k, t]) => [k, t.data])) },
      { metadata: { run: "test" } },
    );
    model = decodeModel(fp32);
  });

  /** Ranges measured on the inputs themselves, from the fp32 model with every planned tensor as an output. */
  async function measuredRanges(tensors: string[]): Promise<Map<string, Range>> {
    const outputs = [
      ...model.outputs,
      ...tensors.filter((t) => t !== "input").map((t) => ({ name: t, type: { tensorType: { elemType: 1 } } })),
    ];
    const session = await ort.InferenceSession.create(encodeModel({ ...model, outputs }));
    const out = await session.run({ input: new ort.Tensor("float32", inputs, [16, 1, 28, 28]) });
    const range = (v: Float32Array) => ({ min: Math.min(...v), max: Math.max(...v) });
    return new Map(tensors.map((t) => [t, range(t === "input" ? inputs : (out[t]!.data as Float32Array))]));
  }

  it("reads the file back as it was written", () => {
    expect(encodeModel(model)).toEqual(fp32);
    expect(model.metadata).toEqual({ run: "test" });
    expect(() => decodeModel(new TextEncoder().encode("not a model at all"))).toThrow(/not an ONNX model/);
  });

  it("quantizes the input and every Conv, Add and pooling output, folding each ReLU into its producer", () => {
    const plan = planQdq(model);
    const relus = model.nodes.filter((n) => n.opType === "Relu").map((n) => n.output[0]);
    expect([...plan.foldedRelus].sort()).toEqual([...relus].sort());
    expect(plan.tensors).toContain("input");
    expect(plan.tensors).toContain("stem.relu");
    expect(plan.tensors).toContain("stage1.block1.b.bn"); // the residual branch before its Add
    expect(plan.tensors).toContain("stage1.block1.out"); // Add + ReLU
    expect(plan.tensors).toContain("pool");
    expect(plan.tensors).not.toContain("fc");
    expect(plan.tensors).not.toContain("logits");
  });

  it("writes a model onnx.checker accepts, with uint8 weights (the default), int32 biases, no ReLU, and float logits", async () => {
    const plan = planQdq(model);
    const qdq = toQdq(model, plan, await measuredRanges(plan.tensors));
    expect(runOnnxChecker(qdq)).toMatchObject({ status: "passed" });
    const view = pythonView(qdq);
    expect(view.ops).not.toContain("Relu");
    const convs = model.nodes.filter((n) => n.opType === "Conv").length;
    expect(view.ops.filter((o) => o === "QuantizeLinear")).toHaveLength(plan.tensors.length);
    expect(view.ops.filter((o) => o === "DequantizeLinear")).toHaveLength(plan.tensors.length + 2 * (convs + 1));
    expect(view.types["stem.conv.weight.q"]).toBe(2); // UINT8
    expect(view.types["stem.conv.bias.q"]).toBe(6); // INT32
    expect(view.types["stem.relu.zp"]).toBe(2); // UINT8
    expect(view.types["fc.kernel.q"]).toBe(2);
    expect(Object.keys(view.types)).not.toContain("stem.conv.weight"); // the float weights are gone
  });

  it("computes what its fp32 twin computes, up to rounding, and ReLUs still clamp at 0", async () => {
    const plan = planQdq(model);
    const qdq = toQdq(model, plan, await measuredRanges(plan.tensors));
    const [a, b] = await Promise.all([ort.InferenceSession.create(fp32), openInt8Session(qdq)]);
    const [x, y] = [await logits(a, inputs, 16), await logits(b, inputs, 16)];
    const meanAbs = (v: ArrayLike<number>) => Array.from(v).reduce((s, t) => s + Math.abs(t), 0) / v.length;
    expect(meanAbs(x.map((v, i) => v - y[i]!)) / meanAbs(x)).toBeLessThan(0.1);
    // The folded stem ReLU, read back through its uint8 tensor: nothing below the zero point.
    const zp = decodeModel(qdq).initializers.find((t) => t.name === "stem.relu.zp")!;
    expect(Array.from(zp.rawData!)).toEqual([0]);
  });

  it("writes the weight format asked for, and each computes what the int8 file computes", async () => {
    const plan = planQdq(model);
    const ranges = await measuredRanges(plan.tensors);
    const run = async (bytes: Uint8Array) => {
      const session = await openInt8Session(bytes);
      const out = await logits(session, inputs, 16);
      await session.release();
      return out;
    };
    const reference = await run(toQdq(model, plan, ranges, { weights: "int8" }));
    const scale = Math.max(...reference.map(Math.abs));
    for (const [weights, type, values] of [
      ["int7", 3, (v: number) => v >= -64 && v <= 64],
      ["uint8", 2, (v: number) => v >= 1 && v <= 255],
    ] as const) {
      const qdq = toQdq(model, plan, ranges, { weights });
      expect(runOnnxChecker(qdq)).toMatchObject({ status: "passed" });
      const decoded = decodeModel(qdq);
      const weight = decoded.initializers.find((t) => t.name === "stem.conv.weight.q")!;
      expect(weight.dataType).toBe(type);
      const stored = type === 3 ? Int8Array.from(weight.rawData!) : Uint8Array.from(weight.rawData!);
      expect(stored.every(values)).toBe(true);
      const zp = decoded.initializers.find((t) => t.name === "stem.conv.weight.zp")!;
      expect(new Set(zp.rawData)).toEqual(new Set([WEIGHT_FORMATS[weights].zeroPoint]));
      expect(view(decoded.initializers.find((t) => t.name === "stem.conv.bias.zp")!)).toEqual(new Set([0]));
      // uint8 is int8 shifted: the same values. 7-bit weights round twice as coarsely, and on this
      // random-weight student the error compounds over its layers (10.4% of the largest logit seen):
      // bounded loosely here; the export's two-runtime gate checks accuracy on real models.
      const out = await run(qdq);
      const worst = Math.max(...out.map((v, i) => Math.abs(v - reference[i]!)));
      if (weights === "uint8") expect(worst).toBeLessThanOrEqual(1e-5 * scale);
      else expect(worst).toBeLessThanOrEqual(0.2 * scale);
    }
  });

  it("needs a range for every planned tensor, and a ReLU output that starts at 0", () => {
    const plan = planQdq(model);
    const ranges = new Map(plan.tensors.map((t) => [t, { min: plan.foldedRelus.has(t) ? 0 : -1, max: 1 }]));
    ranges.delete("pool");
    expect(() => toQdq(model, plan, ranges)).toThrow(/no calibrated range for tensor "pool"/);
    ranges.set("pool", { min: 0, max: 1 });
    ranges.set("stem.relu", { min: -0.5, max: 1 });
    expect(() => toQdq(model, plan, ranges)).toThrow(
      /stem\.relu: a ReLU output calibrated to \[-0\.5, 1\] has zero point \d+, not 0/,
    );
  });

  it("keeps ops it does not quantize in float, reading the float tensors", () => {
    // A batch norm left as Mul + Add over constants (as the exporter writes one it cannot fold).
    const weight = model.initializers.find((t) => t.name === "stem.conv.weight")!;
    const scale = {
      name: "s",
      dims: [1, weight.dims[0]!, 1, 1],
      dataType: 1,
      rawData: new Uint8Array(new Float32Array(weight.dims[0]!).fill(0.5).buffer),
    };
    const nodes = model.nodes.flatMap((n) =>
      n.opType === "Relu" && n.input[0] === "stem.bn"
        ? [
            { opType: "Mul", input: ["stem.bn", "s"], output: ["stem.half"], attribute: [] },
            { ...n, input: ["stem.half"] },
          ]
        : [n],
    );
    const altered: DecodedModel = { ...model, nodes, initializers: [...model.initializers, scale] };
    const plan = planQdq(altered);
    expect(plan.tensors).toContain("stem.bn"); // the Conv's output is still quantized...
    expect(plan.foldedRelus.has("stem.relu")).toBe(false); // ...but the ReLU after the Mul stays
    const ranges = new Map(plan.tensors.map((t) => [t, { min: plan.foldedRelus.has(t) ? 0 : -1, max: 1 }]));
    const qdq = toQdq(altered, plan, ranges);
    expect(runOnnxChecker(qdq)).toMatchObject({ status: "passed" });
    const mul = decodeModel(qdq).nodes.find((n) => n.opType === "Mul")!;
    expect(mul.input).toEqual(["stem.bn", "s"]);
    expect(Array.from(floatValues(decodeModel(qdq).initializers.find((t) => t.name === "s")!))).toEqual(
      new Array(weight.dims[0]!).fill(0.5),
    );
  });
});
