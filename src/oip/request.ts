// Parsing and validating an inference request against a model's signature. Pure: no Worker APIs, so
// the Node teacher host uses the same rules. Every rejection is a 400 naming the offending field.
import type { ModelEntry } from "../../models/schema.ts";
import { badRequest } from "../http/errors.ts";
import { HEADER_LENGTH } from "./types.ts";

export interface InferLimits {
  /** Largest batch (first dimension) one request may carry. */
  maxBatch: number;
}

export interface RequestedOutput {
  name: string;
  /** Send this output in the binary section (Triton's binary tensor data extension). */
  binary: boolean;
  /** Triton's classification extension: answer the top k classes as strings instead of the tensor. */
  classification?: number;
}

export interface InferRequest {
  id?: string;
  /** The model's one input, row-major, every value a finite FP32. */
  input: Float32Array;
  /** The input's shape, batch first. */
  dims: number[];
  outputs: RequestedOutput[];
}

type Obj = Record<string, unknown>;

const FP32_MAX = 3.4028234663852886e38;

function object(v: unknown, where: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw badRequest(`${where} must be a JSON object`);
  return v as Obj;
}

function optionalObject(v: unknown, where: string): Obj {
  return v === undefined ? {} : object(v, where);
}

function finite(v: unknown, where: string): number {
  if (typeof v !== "number") throw badRequest(`${where} must be a number, got ${v === null ? "null" : typeof v}`);
  if (!(Math.abs(v) <= FP32_MAX)) throw badRequest(`${where} is ${v}: values must be finite FP32 numbers`);
  return v;
}

/** Reads a body that is JSON, or JSON followed by a binary section whose start the header gives. */
export function splitBody(body: Uint8Array, headerLength: string | null): { json: unknown; binary: Uint8Array } {
  let jsonEnd = body.length;
  if (headerLength !== null) {
    const n = /^\d{1,10}$/.test(headerLength.trim()) ? Number(headerLength) : NaN;
    if (!(n <= body.length)) {
      throw badRequest(
        `${HEADER_LENGTH} must be an integer between 0 and the body length (${body.length}), got "${headerLength.slice(0, 40)}"`,
      );
    }
    jsonEnd = n;
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body.subarray(0, jsonEnd)));
  } catch (err) {
    throw badRequest(`malformed JSON: ${err instanceof Error ? err.message : "cannot parse"}`);
  }
  return { json, binary: body.subarray(jsonEnd) };
}

function readShape(v: unknown, model: ModelEntry, limits: InferLimits, where: string): number[] {
  const expected = model.input.shape;
  if (!Array.isArray(v) || !v.every((d) => Number.isInteger(d) && d >= 0)) {
    throw badRequest(`${where}.shape must be an array of non-negative integers`);
  }
  const shape = v as number[];
  const want = `[${expected.map((d) => (d === -1 ? "N" : d)).join(", ")}]`;
  if (shape.length !== expected.length || shape.some((d, i) => expected[i] !== -1 && d !== expected[i])) {
    throw badRequest(`${where}.shape is [${shape.join(", ")}]; model "${model.name}" takes ${want}`);
  }
  const batch = shape[0]!;
  if (batch < 1 || batch > limits.maxBatch) {
    throw badRequest(`${where}.shape has batch ${batch}; it must be between 1 and ${limits.maxBatch}`);
  }
  return shape;
}

/** Flat row-major `data`, or nested arrays that follow the shape exactly. */
function readData(data: unknown, shape: number[], where: string): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Array.isArray(data)) throw badRequest(`${where}.data must be an array`);
  const out = new Float32Array(count);
  if (data.length > 0 && !Array.isArray(data[0])) {
    if (data.length !== count)
      throw badRequest(`${where}.data has ${data.length} values; shape [${shape.join(", ")}] needs ${count}`);
    for (let i = 0; i < count; i++) out[i] = finite(data[i], `${where}.data[${i}]`);
    return out;
  }
  let n = 0;
  const walk = (v: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      out[n++] = finite(v, path);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw badRequest(
        `${path} must be an array of ${shape[depth]} (nested data must follow shape [${shape.join(", ")}])`,
      );
    }
    for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${path}[${i}]`);
  };
  walk(data, 0, `${where}.data`);
  return out;
}

/** FP32 little-endian values from the binary section. */
function readBinary(bytes: Uint8Array, count: number, where: string): Float32Array {
  if (bytes.length !== count * 4) {
    throw badRequest(`${where} has ${bytes.length} bytes of binary data; its shape needs ${count * 4} (FP32)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = view.getFloat32(i * 4, true);
    if (!Number.isFinite(v)) throw badRequest(`${where} value ${i} is ${v}: values must be finite FP32 numbers`);
    out[i] = v;
  }
  return out;
}

function readOutputs(v: unknown, model: ModelEntry, binaryDefault: boolean): RequestedOutput[] {
  if (v === undefined) return model.outputs.map((o) => ({ name: o.name, binary: binaryDefault }));
  if (!Array.isArray(v) || v.length === 0) throw badRequest("outputs must be a non-empty array when present");
  const seen = new Set<string>();
  return v.map((item, i) => {
    const o = object(item, `outputs[${i}]`);
    const name = o.name;
    if (typeof name !== "string" || !model.outputs.some((t) => t.name === name)) {
      throw badRequest(`outputs[${i}].name must be one of ${model.outputs.map((t) => `"${t.name}"`).join(", ")}`);
    }
    if (seen.has(name)) throw badRequest(`outputs[${i}].name "${name}" is requested twice`);
    seen.add(name);
    const params = optionalObject(o.parameters, `outputs[${i}].parameters`);
    const binary = params.binary_data ?? binaryDefault;
    if (typeof binary !== "boolean") throw badRequest(`outputs[${i}].parameters.binary_data must be a boolean`);
    const k = params.classification;
    if (k === undefined) return { name, binary };
    if (typeof k !== "number" || !Number.isInteger(k) || k < 1)
      throw badRequest(`outputs[${i}].parameters.classification must be a positive integer`);
    return { name, binary, classification: k };
  });
}

/** Validates a parsed request body (and its binary section, if any) against the model's signature. */
export function parseInferRequest(
  json: unknown,
  binary: Uint8Array,
  model: ModelEntry,
  limits: InferLimits,
): InferRequest {
  const body = object(json, "request body");
  if (body.id !== undefined && typeof body.id !== "string") throw badRequest("id must be a string");
  const params = optionalObject(body.parameters, "parameters");
  const binaryDefault = params.binary_data_output ?? false;
  if (typeof binaryDefault !== "boolean") throw badRequest("parameters.binary_data_output must be a boolean");

  const inputs = body.inputs;
  if (!Array.isArray(inputs) || inputs.length !== 1) {
    throw badRequest(
      `inputs must be an array of exactly one tensor: model "${model.name}" takes "${model.input.name}"`,
    );
  }
  const where = "inputs[0]";
  const t = object(inputs[0], where);
  if (t.name !== model.input.name) {
    throw badRequest(`${where}.name must be "${model.input.name}", got ${JSON.stringify(t.name) ?? "nothing"}`);
  }
  if (t.datatype !== "FP32") {
    throw badRequest(
      `${where}.datatype ${JSON.stringify(t.datatype) ?? "is missing"}: model "${model.name}" takes FP32`,
    );
  }
  const dims = readShape(t.shape, model, limits, where);
  const count = dims.reduce((a, b) => a * b, 1);
  const binarySize = optionalObject(t.parameters, `${where}.parameters`).binary_data_size;

  let input: Float32Array;
  if (binarySize === undefined) {
    if (binary.length > 0)
      throw badRequest(`the body has ${binary.length} bytes of binary data but no input claims them`);
    input = readData(t.data, dims, where);
  } else {
    if (!Number.isInteger(binarySize) || (binarySize as number) < 0)
      throw badRequest(`${where}.parameters.binary_data_size must be a non-negative integer`);
    if (t.data !== undefined) throw badRequest(`${where} has both data and binary_data_size`);
    if (binarySize !== binary.length) {
      throw badRequest(
        `${where}.parameters.binary_data_size is ${binarySize} but the binary section has ${binary.length} bytes`,
      );
    }
    input = readBinary(binary, count, where);
  }

  const request: InferRequest = { input, dims, outputs: readOutputs(body.outputs, model, binaryDefault) };
  if (typeof body.id === "string") request.id = body.id;
  return request;
}
