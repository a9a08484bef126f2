// Building Open Inference Protocol answers from a model's manifest entry and its outputs. Pure.
import type { ModelEntry } from "../../models/schema.ts";
import type { InferRequest } from "./request.ts";
import {
  type InferResponse,
  type ModelMetadata,
  type ResponseOutput,
  type ServerMetadata,
  HEADER_LENGTH,
  PLATFORM,
} from "./types.ts";

export interface OutputTensor {
  dims: number[];
  data: Float32Array;
}

/** Extensions this server implements, as GET /v2 lists them. */
export const EXTENSIONS = ["classification", "binary_tensor_data", "model_configuration"];

export function serverMetadata(name: string, version: string): ServerMetadata {
  return { name, version, extensions: EXTENSIONS };
}

export function modelMetadata(model: ModelEntry): ModelMetadata {
  return {
    name: model.name,
    versions: [model.version],
    platform: PLATFORM,
    inputs: [{ name: model.input.name, datatype: model.input.datatype, shape: model.input.shape }],
    outputs: model.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape })),
  };
}

/**
 * Triton's model configuration (GET /v2/models/{name}/config), which tools such as perf_analyzer
 * read: with batching on, dims leave out the batch dimension.
 */
export function modelConfig(model: ModelEntry, maxBatch: number) {
  const batched = model.input.shape[0] === -1;
  const dims = (shape: number[]) => (batched ? shape.slice(1) : shape);
  return {
    name: model.name,
    platform: PLATFORM,
    backend: "onnxruntime",
    version_policy: { specific: { versions: [model.version] } },
    max_batch_size: batched ? maxBatch : 0,
    input: [
      {
        name: model.input.name,
        data_type: "TYPE_FP32",
        format: `FORMAT_${model.input.layout}`,
        dims: dims(model.input.shape),
      },
    ],
    output: model.outputs.map((o) => ({ name: o.name, data_type: "TYPE_FP32", dims: dims(o.shape) })),
  };
}

/**
 * Triton's classification extension: for each batch row, the k largest values of a [N, classes]
 * output as "value:index:label" strings, largest first (k is capped at the class count).
 */
export function topClasses(t: OutputTensor, k: number, labels: string[]): { shape: number[]; data: string[] } {
  const rows = t.dims[0] ?? 1;
  const classes = t.data.length / rows;
  const kept = Math.min(k, classes);
  const data: string[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from(t.data.subarray(r * classes, (r + 1) * classes), (value, index) => ({ value, index }));
    row.sort((a, b) => b.value - a.value);
    for (const { value, index } of row.slice(0, kept)) {
      const label = labels[index];
      data.push(label === undefined ? `${value.toFixed(6)}:${index}` : `${value.toFixed(6)}:${index}:${label}`);
    }
  }
  return { shape: [rows, kept], data };
}

/** A BYTES tensor in the binary section: each element a little-endian 4-byte length, then its bytes. */
function encodeBytesTensor(strings: string[]): Uint8Array {
  const encoded = strings.map((s) => new TextEncoder().encode(s));
  const out = new Uint8Array(encoded.reduce((n, e) => n + 4 + e.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const e of encoded) {
    view.setUint32(at, e.length, true);
    out.set(e, at + 4);
    at += 4 + e.length;
  }
  return out;
}

export interface EncodedResponse {
  body: string | Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

/**
 * The answer to an infer request: the requested outputs in the requested order, each as JSON data or,
 * when asked for, in a binary section after the JSON (Triton's binary tensor data extension).
 */
export function inferResponse(
  model: ModelEntry,
  request: InferRequest,
  results: Map<string, OutputTensor>,
): EncodedResponse {
  const binaries: Uint8Array[] = [];
  const outputs = request.outputs.map(({ name, binary, classification }): ResponseOutput => {
    const t = results.get(name);
    if (!t) throw new Error(`model "${model.name}" produced no output "${name}"`);
    if (classification !== undefined) {
      const { shape, data } = topClasses(t, classification, model.labels);
      if (!binary) return { name, shape, datatype: "BYTES", data };
      const bytes = encodeBytesTensor(data);
      binaries.push(bytes);
      return { name, shape, datatype: "BYTES", parameters: { binary_data_size: bytes.length } };
    }
    if (!binary) return { name, shape: t.dims, datatype: "FP32", data: Array.from(t.data) };
    const bytes = new Uint8Array(t.data.length * 4);
    const view = new DataView(bytes.buffer);
    t.data.forEach((v, i) => {
      view.setFloat32(i * 4, v, true);
    });
    binaries.push(bytes);
    return { name, shape: t.dims, datatype: "FP32", parameters: { binary_data_size: bytes.length } };
  });
  const json: InferResponse = { model_name: model.name, model_version: model.version, outputs };
  if (request.id !== undefined) json.id = request.id;
  const text = JSON.stringify(json);
  if (binaries.length === 0) return { body: text, headers: { "Content-Type": "application/json" } };

  const header = new TextEncoder().encode(text);
  const body = new Uint8Array(header.length + binaries.reduce((n, b) => n + b.length, 0));
  body.set(header, 0);
  let at = header.length;
  for (const b of binaries) {
    body.set(b, at);
    at += b.length;
  }
  return { body, headers: { "Content-Type": "application/octet-stream", [HEADER_LENGTH]: String(header.length) } };
}
