import { mkdtempSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { architecture } from "../../../training/model/resnet.ts";
import { paramSpecs } from "../../../training/model/graph.ts";
import { removeStaleTemporaryFiles } from "../../../training/io/atomic.ts";
import {
  type Checkpoint,
  type CheckpointMeta,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "../../../training/train/checkpoint.ts";

function sample(): Checkpoint {
  const graph = architecture("unmodified", { height: 8, width: 8, channels: 1 }, 3, 0.125);
  const weights = new Map(
    paramSpecs(graph).map((s, i) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      return [s.name, { shape: s.shape, data: Float32Array.from({ length: n }, (_, j) => i + j / 7) }] as const;
    }),
  );
  const optimizer = new Map([
    [
      "fc.kernel:momentum",
      {
        shape: weights.get("fc.kernel")!.shape,
        data: new Float32Array(weights.get("fc.kernel")!.data.length).fill(-0.5),
      },
    ],
  ]);
  const meta: CheckpointMeta = {
    name: "unmodified-kd",
    role: "student",
    architecture: "unmodified",
    widthScale: 0.125,
    loss: { name: "kd", options: { temperature: 4, alpha: 0.9 } },
    dataset: {
      name: "test",
      labels: ["a", "b", "c"],
      normalization: { mean: [0.5], std: [0.25] },
      trainSamples: 1,
      valSamples: 0,
      testSamples: 1,
    },
    epoch: 2,
    step: 17,
    done: false,
    rng: [1, 2, 3, 4],
    config: { lr: 0.1 },
    history: [],
    engine: { backend: "cpu", device: "CPU" },
    wallSeconds: 1.5,
  };
  return { graph, weights, optimizer, meta };
}

describe("checkpoint file", () => {
  it("round-trips graph, weights, optimizer slots and meta exactly", () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
    const a = sample();
    saveCheckpoint(join(dir, "c.ndckpt"), a);
    const b = loadCheckpoint(join(dir, "c.ndckpt"));
    expect(b.graph).toEqual(a.graph);
    expect(b.meta).toEqual(a.meta);
    expect([...b.weights.keys()]).toEqual([...a.weights.keys()]);
    for (const [k, t] of a.weights) expect(b.weights.get(k)).toEqual(t);
    expect(b.optimizer).toEqual(a.optimizer);
    expect(readdirSync(dir)).toEqual(["c.ndckpt"]); // no temporary file left behind
  });

  it("starts its tensor data 8-byte aligned", () => {
    const bytes = encodeCheckpoint(sample());
    const headerLength = Buffer.from(bytes).readUInt32LE(8);
    expect((12 + headerLength) % 8).toBe(0);
  });

  it("refuses truncated, damaged, foreign and missing files with the problem named", () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
    const bytes = Buffer.from(encodeCheckpoint(sample()));
    const truncated = join(dir, "truncated.ndckpt");
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 10));
    expect(() => loadCheckpoint(truncated)).toThrow(/truncated\.ndckpt: truncated/);
    const damaged = Buffer.from(bytes);
    damaged[damaged.length - 3] = damaged[damaged.length - 3]! ^ 0xff;
    expect(() => decodeCheckpoint(damaged, "d")).toThrow(/d: tensor data does not match its checksum/);
    expect(() => decodeCheckpoint(Buffer.from("PK\x03\x04 not a checkpoint"), "zip")).toThrow(
      /zip: not a narrowdeep checkpoint/,
    );
    expect(() => loadCheckpoint(join(dir, "nope.ndckpt"))).toThrow(/nope\.ndckpt: checkpoint file not found/);
    expect(() => decodeCheckpoint(bytes.subarray(0, 30), "short")).toThrow(/short: truncated/);
  });

  it("refuses weights that do not fit the graph", () => {
    const c = sample();
    c.weights.delete("fc.bias");
    expect(() => encodeCheckpoint(c)).toThrow(/missing weight "fc.bias"/);
  });

  it("clears the temporary files of a writer killed mid-write, and nothing else", () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-"));
    saveCheckpoint(join(dir, "checkpoint.ndckpt"), sample());
    writeFileSync(join(dir, ".checkpoint.ndckpt.4242.1764350000000.tmp"), "half a checkpoint");
    writeFileSync(join(dir, "notes.tmp"), "not ours");
    removeStaleTemporaryFiles(dir);
    expect(readdirSync(dir).sort()).toEqual(["checkpoint.ndckpt", "notes.tmp"]);
    removeStaleTemporaryFiles(join(dir, "missing")); // no directory: nothing to do
  });
});
