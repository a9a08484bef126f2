// The encoder on every preset: valid for onnx.checker, structurally what the manifest promises (NCHW
// input, BN folded), and numerically the tfjs model (parity on real Fashion-MNIST test images).
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { beforeAll, describe, expect, it } from "vitest";
import type { Dataset, ImageSet } from "../../../training/data/dataset.ts";
import { loadFashionMnist } from "../../../training/data/fashion-mnist.ts";
import { makeBatch, normalizationTable } from "../../../training/data/batches.ts";
import { Rng } from "../../../training/data/rng.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import { runOnnxChecker } from "../../../training/export/checker.ts";
import { UnsupportedLayerError, graphToOnnx } from "../../../training/model/to-onnx.ts";
import type { Images } from "../../../training/data/layout.ts";
import { assertParity, measureParity, openSession } from "../../../training/export/verify.ts";
import { type Graph, type Layer, paramSpecs } from "../../../training/model/graph.ts";
import { buildResNet } from "../../../training/model/resnet.ts";
import { createModel, disposeModel } from "../../../training/model/forward.ts";
import { modelFromCheckpoint } from "../../../training/train/teacher.ts";
import { FASHION_NORMALIZATION, fixtureCheckpoint } from "../export/fixtures.ts";

const ModelProto = protobuf
  .loadSync(fileURLToPath(new URL("../../../training/onnx/onnx.proto", import.meta.url)))
  .lookupType("onnx.ModelProto");
interface Decoded {
  irVersion: number;
  opsetImport: { version: number }[];
  graph: {
    node: { opType: string; name: string }[];
    input: { name: string; type: { tensorType: { shape: { dim: { dimValue?: number; dimParam?: string }[] } } } }[];
    output: { name: string }[];
    initializer: { name: string }[];
  };
}
const decode = (bytes: Uint8Array) =>
  ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: true }) as unknown as Decoded;

let images: Images;

function testImages(set: ImageSet, count: number): Images {
  const batch = makeBatch(
    set,
    Array.from({ length: count }, (_, i) => i),
    normalizationTable(FASHION_NORMALIZATION),
    null,
    new Rng(0),
  );
  return { data: batch.images, count, height: set.height, width: set.width, channels: set.channels };
}

beforeAll(async () => {
  await initBackend("wasm", { log: () => {} });
  const data: Dataset = loadFashionMnist();
  images = testImages(data.test, 512);
});

describe("graphToOnnx", () => {
  for (const preset of ["teacher", "unmodified", "wide", "narrow-deep"]) {
    it(`exports the ${preset} preset: checker passes, NCHW input, BN folded, parity on 512 test images`, async () => {
      const ckpt = fixtureCheckpoint({
        architecture: preset,
        role: preset === "teacher" ? "teacher" : "student",
        widthScale: 0.125,
      });
      const onnx = graphToOnnx({ graph: ckpt.graph, tensors: new Map([...ckpt.weights].map(([k, t]) => [k, t.data])) });

      const checker = runOnnxChecker(onnx);
      expect(checker.status, checker.detail).toBe("passed");

      const m = decode(onnx);
      expect(m.opsetImport[0]!.version).toBe(13);
      expect(m.graph.input.map((i) => i.name)).toEqual(["input"]);
      expect(m.graph.input[0]!.type.tensorType.shape.dim.map((d) => d.dimParam || d.dimValue)).toEqual([
        "N",
        1,
        28,
        28,
      ]);
      expect(m.graph.output.map((o) => o.name)).toEqual(["logits", "probabilities"]);
      const ops = m.graph.node.map((n) => n.opType);
      const convs = ckpt.graph.layers.filter((l) => l.op === "conv").length;
      expect(ops.filter((o) => o === "Conv")).toHaveLength(convs);
      // Every batch norm follows its convolution, so all fold away: no BN, no affine Mul.
      expect(ops).not.toContain("BatchNormalization");
      expect(ops).not.toContain("Mul");
      expect(m.graph.initializer.some((t) => t.name.includes(".bn"))).toBe(false);

      const session = await openSession(onnx);
      const model = modelFromCheckpoint(ckpt);
      const parity = await measureParity(model, session, images);
      disposeModel(model);
      await session.release();
      expect(parity.samples).toBe(512);
      expect(parity.maxAbsLogitDiff).toBeLessThanOrEqual(1e-4);
      expect(parity.top1Agreement).toBe(1);
      assertParity(preset, parity);
    });
  }

  it("exports a batch norm that does not follow a convolution as Mul+Add, and bottleneck blocks", async () => {
    const resnet = buildResNet(
      {
        block: "bottleneck",
        stemChannels: 4,
        stages: [
          { channels: 2, blocks: 1, stride: 1 },
          { channels: 4, blocks: 1, stride: 2 },
        ],
      },
      { height: 28, width: 28, channels: 1 },
      10,
    );
    // Insert a batch norm after the stem's ReLU (not foldable: it reads a ReLU).
    const layers: Layer[] = [];
    for (const l of resnet.layers) {
      layers.push(l.op === "conv" && l.input === "stem.relu" ? { ...l, input: "stem.post" } : l);
      if (l.name === "stem.relu") layers.push({ op: "batchnorm", name: "stem.post", input: "stem.relu", channels: 4 });
    }
    const graph: Graph = { ...resnet, layers };
    const model = createModel(graph, 3);
    const onnx = graphToOnnx(model, { opset: 17 });
    expect(runOnnxChecker(onnx).status).toBe("passed");
    const m = decode(onnx);
    expect(m.irVersion).toBe(8);
    expect(m.opsetImport[0]!.version).toBe(17);
    expect(m.graph.node.filter((n) => n.opType === "Mul").map((n) => n.name)).toEqual(["stem.post.mul"]);
    const session = await openSession(onnx);
    const parity = await measureParity(model, session, images);
    disposeModel(model);
    await session.release();
    assertParity("bottleneck", parity);
  });

  it("names the layer and its type when it meets one it does not support", () => {
    const graph = buildResNet(
      { block: "basic", stemChannels: 2, stages: [{ channels: 2, blocks: 1, stride: 1 }] },
      { height: 8, width: 8, channels: 1 },
      3,
    );
    const odd = {
      ...graph,
      layers: [
        ...graph.layers.slice(0, 3),
        { op: "maxpool", name: "stem.pool", input: "stem.relu" } as unknown as Layer,
        ...graph.layers.slice(3),
      ],
    };
    const tensors = new Map(
      paramSpecs(graph).map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]),
    );
    expect(() => graphToOnnx({ graph: odd, tensors })).toThrow(UnsupportedLayerError);
    expect(() => graphToOnnx({ graph: odd, tensors })).toThrow(
      'layer "stem.pool" has type "maxpool", which the ONNX exporter does not support',
    );
  });

  it("refuses opsets before 13 and missing weights", () => {
    const graph = buildResNet(
      { block: "basic", stemChannels: 2, stages: [{ channels: 2, blocks: 1, stride: 1 }] },
      { height: 8, width: 8, channels: 1 },
      3,
    );
    const tensors = new Map(
      paramSpecs(graph).map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1))]),
    );
    expect(() => graphToOnnx({ graph, tensors }, { opset: 12 })).toThrow("opset must be an integer >= 13, got 12");
    tensors.delete("fc.bias");
    expect(() => graphToOnnx({ graph, tensors })).toThrow('missing tensor "fc.bias"');
  });
});
