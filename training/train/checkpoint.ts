// One training checkpoint = one file, written atomically (training/io/atomic.ts), so a run killed at
// any moment leaves either the previous checkpoint or the new one, never a torn file.
//
// File layout (all integers little-endian):
//
//   offset 0   8 bytes   magic "NDCKPT\0\x01" (format version 1 in the last byte)
//   offset 8   uint32    H = byte length of the JSON header
//   offset 12  H bytes   JSON header, UTF-8 (see CheckpointHeader), space-padded so that the
//                        tensor data starts at a multiple of 8
//   then       raw float32 little-endian data of every tensor, back to back, in header order
//
// The header lists each tensor as {group, name, shape, offset, length} (offset and length in
// float32 elements from the start of the data section) and carries the SHA-256 of the data
// section, so a damaged file is refused with a message instead of loading garbage.
//
// Tensor groups: "weights" holds every tensor of the Graph by its ParamSpec name (trainable weights
// and batch-norm moving statistics), "optimizer" holds optimizer slots named "<param>:<slot>" (for
// SGD with momentum: "<param>:momentum"). Everything else (epoch, step, RNG state, config, metrics,
// data set normalization and labels) is plain JSON in `meta`.
//
// This module has no tfjs dependency: the exporter and tools can read checkpoints without an engine.
import { createHash } from "node:crypto";
import { writeFileAtomic } from "../io/atomic.ts";
import { readFileOrExplain } from "../io/read.ts";
import { type Graph, paramSpecs } from "../model/graph.ts";
import type { StoredTensor } from "../model/stored-tensor.ts";
import type { ModelIdentity } from "./identity.ts";

export const CHECKPOINT_MAGIC = Buffer.from([0x4e, 0x44, 0x43, 0x4b, 0x50, 0x54, 0x00, 0x01]); // "NDCKPT\0\1"
export const CHECKPOINT_EXTENSION = ".ndckpt";

export type TensorGroup = "weights" | "optimizer";

/** One completed epoch of one model. Accuracies are fractions in [0, 1]. */
export interface EpochMetrics {
  epoch: number;
  /** The training loss (KD: the whole distillation loss). */
  trainLoss: number;
  /** Cross-entropy with the labels, whatever the loss: KD's hard part, comparable with a baseline's loss. */
  trainCrossEntropy?: number;
  trainAccuracy: number;
  valAccuracy?: number;
  valLoss?: number;
  /**
   * On the test split, measured once, at the last epoch: the reported model is the last epoch's, and
   * test accuracy never chooses anything. (Runs before this rule measured it every epoch.)
   */
  testAccuracy?: number;
  testLoss?: number;
  /** Multi-label data: mean average precision on the validation and (last epoch) test splits. */
  valMap?: number;
  testMap?: number;
  learningRate: number;
  /** Training images per wall-clock second: everything the epoch's training waited for is counted. */
  imagesPerSecond: number;
  /** Wall-clock seconds of this epoch (training + evaluation). */
  seconds: number;
}

export interface PartialEpoch {
  batch: number;
  lossSum: number;
  correct: number;
  seen: number;
  /** Cross-entropy with the labels summed over the images seen (absent in older checkpoints). */
  crossEntropySum?: number;
  /** Wall-clock training seconds spent in the epoch so far. */
  seconds: number;
}

export interface DatasetInfo {
  /** e.g. "fashion-mnist", "cifar10". */
  name: string;
  labels: string[];
  /** Applied to pixel values scaled to [0, 1]: (x - mean[c]) / std[c]. */
  normalization: { mean: number[]; std: number[] };
  trainSamples: number;
  valSamples: number;
  testSamples: number;
  /** Present (true) only for multi-label data (multi-hot targets, sigmoid outputs). */
  multiLabel?: true;
}

export interface CheckpointMeta extends ModelIdentity {
  dataset: DatasetInfo;
  /** Epochs completed (the checkpoint is taken after this many full epochs). */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /**
   * Set when the checkpoint was taken inside epoch `epoch + 1` (time-based checkpoints): batches
   * done and the running training sums of that epoch. Absent at epoch ends.
   */
  inEpoch?: PartialEpoch;
  /** True once the run has done all its epochs. */
  done: boolean;
  /** State of the run's random generator (data order, augmentation), to resume exactly. */
  rng: number[];
  /** The sub-run's resolved configuration. */
  config: Record<string, unknown>;
  /** One entry per completed epoch. */
  history: EpochMetrics[];
  /** Engine that trained it, e.g. {backend: "wasm", device: "CPU (1 thread)"}. */
  engine: { backend: string; device: string };
  /** Training seconds summed over all sessions (resumes included). */
  wallSeconds: number;
  /** For distilled students: the teacher checkpoint and what computed its soft targets. */
  teacher?: { checkpoint: string; engine: string };
}

export interface Checkpoint {
  graph: Graph;
  weights: Map<string, StoredTensor>;
  optimizer: Map<string, StoredTensor>;
  meta: CheckpointMeta;
}

interface TensorEntry {
  group: TensorGroup;
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

interface CheckpointHeader {
  graph: Graph;
  meta: CheckpointMeta;
  tensors: TensorEntry[];
  dataSha256: string;
}

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Serializes a checkpoint; the weights must match the graph's parameters exactly. */
export function encodeCheckpoint(ckpt: Checkpoint): Uint8Array {
  checkWeights(ckpt.graph, ckpt.weights, "checkpoint to save");
  const entries: TensorEntry[] = [];
  const arrays: Float32Array[] = [];
  let offset = 0;
  for (const [group, map] of [
    ["weights", ckpt.weights],
    ["optimizer", ckpt.optimizer],
  ] as const) {
    for (const [name, t] of map) {
      if (t.data.length !== size(t.shape))
        throw new CheckpointError(
          `tensor ${group}/${name}: shape [${t.shape}] needs ${size(t.shape)} values, has ${t.data.length}`,
        );
      entries.push({ group, name, shape: [...t.shape], offset, length: t.data.length });
      arrays.push(t.data);
      offset += t.data.length;
    }
  }
  const data = Buffer.alloc(offset * 4);
  let pos = 0;
  for (const a of arrays) {
    // Copy through a little-endian view whatever the host byte order.
    for (let i = 0; i < a.length; i++) data.writeFloatLE(a[i]!, pos + i * 4);
    pos += a.length * 4;
  }
  const header: CheckpointHeader = {
    graph: ckpt.graph,
    meta: ckpt.meta,
    tensors: entries,
    dataSha256: createHash("sha256").update(data).digest("hex"),
  };
  let json = Buffer.from(JSON.stringify(header), "utf8");
  const pad = (8 - ((CHECKPOINT_MAGIC.length + 4 + json.length) % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length, 0);
  return Buffer.concat([CHECKPOINT_MAGIC, len, json, data]);
}

/** Parses a checkpoint; `source` names the file in error messages. */
export function decodeCheckpoint(bytes: Uint8Array, source = "checkpoint"): Checkpoint {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (msg: string): never => {
    throw new CheckpointError(`${source}: ${msg}`);
  };
  if (buf.length < CHECKPOINT_MAGIC.length + 4) fail(`too short (${buf.length} bytes) to be a checkpoint`);
  if (!buf.subarray(0, 6).equals(CHECKPOINT_MAGIC.subarray(0, 6))) fail("not a narrowdeep checkpoint (bad magic)");
  if (buf[7] !== CHECKPOINT_MAGIC[7])
    fail(`unsupported checkpoint format version ${buf[7]} (this code reads ${CHECKPOINT_MAGIC[7]})`);
  const headerLength = buf.readUInt32LE(8);
  const dataStart = 12 + headerLength;
  if (dataStart > buf.length)
    fail(`truncated: header says ${headerLength} bytes, file has ${buf.length - 12} after the magic`);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(buf.subarray(12, dataStart).toString("utf8")) as CheckpointHeader;
  } catch (err) {
    return fail(`header is not valid JSON (${(err as Error).message})`);
  }
  if (!header || !Array.isArray(header.tensors) || !header.graph || !header.meta)
    fail("header lacks graph, meta or tensors");
  const data = buf.subarray(dataStart);
  const expectedBytes = header.tensors.reduce((n, t) => n + t.length * 4, 0);
  if (data.length !== expectedBytes)
    fail(`truncated or padded: tensor data is ${data.length} bytes, header lists ${expectedBytes}`);
  if (createHash("sha256").update(data).digest("hex") !== header.dataSha256)
    fail("tensor data does not match its checksum (file is damaged)");
  const weights = new Map<string, StoredTensor>();
  const optimizer = new Map<string, StoredTensor>();
  for (const t of header.tensors) {
    if (t.length !== size(t.shape))
      fail(`tensor ${t.group}/${t.name}: shape [${t.shape}] does not match its length ${t.length}`);
    const out = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++) out[i] = data.readFloatLE((t.offset + i) * 4);
    (t.group === "weights" ? weights : optimizer).set(t.name, { shape: t.shape, data: out });
  }
  checkWeights(header.graph, weights, source);
  return { graph: header.graph, weights, optimizer, meta: header.meta };
}

/** Every parameter of the graph present with the right shape, and nothing else. */
function checkWeights(graph: Graph, weights: Map<string, StoredTensor>, source: string): void {
  const specs = paramSpecs(graph);
  for (const spec of specs) {
    const t = weights.get(spec.name);
    if (!t) throw new CheckpointError(`${source}: missing weight "${spec.name}"`);
    if (t.shape.join(",") !== spec.shape.join(","))
      throw new CheckpointError(
        `${source}: weight "${spec.name}" has shape [${t.shape}], the graph needs [${spec.shape}]`,
      );
  }
  if (weights.size !== specs.length) {
    const known = new Set(specs.map((s) => s.name));
    const extra = [...weights.keys()].filter((n) => !known.has(n));
    throw new CheckpointError(`${source}: weights not in the graph: ${extra.join(", ")}`);
  }
}

export function saveCheckpoint(path: string, ckpt: Checkpoint): void {
  writeFileAtomic(path, encodeCheckpoint(ckpt));
}

export function loadCheckpoint(path: string): Checkpoint {
  return decodeCheckpoint(
    readFileOrExplain(path, "checkpoint file", (m) => new CheckpointError(m)),
    path,
  );
}
