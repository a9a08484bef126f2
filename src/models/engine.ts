// What the model store needs from an inference runtime. The Worker uses onnxruntime-web (ort-web.ts);
// a Node host can pass an onnxruntime-node engine with the same shape.
import type { ModelEntry } from "../../models/schema.ts";
import type { OutputTensor } from "../oip/response.ts";

export interface Session {
  /** Runs the model on one input (row-major, `dims` batch first); outputs by name. */
  run(input: Float32Array, dims: number[]): Promise<Map<string, OutputTensor>>;
  /** Frees the runtime's memory for it (a model replaced by a new version). */
  release?(): Promise<void>;
}

export interface Engine {
  createSession(model: Uint8Array, entry: ModelEntry): Promise<Session>;
}

/** The manifest's outputs from an onnxruntime result (web or node: both share this shape), by name. */
export function outputsByName(
  entry: ModelEntry,
  results: Record<string, { data: unknown; dims: readonly number[] } | undefined>,
): Map<string, OutputTensor> {
  const out = new Map<string, OutputTensor>();
  for (const spec of entry.outputs) {
    const t = results[spec.name];
    if (!t || !(t.data instanceof Float32Array))
      throw new Error(`model "${entry.name}" gave no FP32 output "${spec.name}"`);
    out.set(spec.name, { dims: [...t.dims], data: t.data });
  }
  return out;
}
