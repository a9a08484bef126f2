// What the model store needs from an inference runtime. The Worker uses onnxruntime-web (ort-web.ts);
// a Node host can pass an onnxruntime-node engine with the same shape.
import type { ModelEntry } from "../../models/schema.ts";
import type { OutputTensor } from "../oip/response.ts";

export interface Session {
  /** Runs the model on one input (row-major, `dims` batch first); outputs by name. */
  run(input: Float32Array, dims: number[]): Promise<Map<string, OutputTensor>>;
}

export interface Engine {
  createSession(model: Uint8Array, entry: ModelEntry): Promise<Session>;
}
