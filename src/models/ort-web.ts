// onnxruntime-web's WASM SIMD backend inside workerd. workerd forbids compiling WebAssembly from bytes,
// so the ORT binary arrives precompiled (a wrangler CompiledWasm rule) and ORT is steered to it: its
// wasmBinary is a small marker buffer, and WebAssembly.instantiate, given that marker, instantiates
// the precompiled module instead. Every other instantiate call goes through untouched.
import * as ort from "onnxruntime-web/wasm";
// A relative path: wrangler's module collector does not resolve package exports for wasm imports.
import ortWasm from "../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm";
import type { ModelEntry } from "../../models/schema.ts";
import type { OutputTensor } from "../oip/response.ts";
import { type Engine, type Session, outputsByName } from "./engine.ts";

let configured = false;

function useBundledWasm(): void {
  if (configured) return;
  configured = true;
  const marker = new ArrayBuffer(8);
  const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (
    source: unknown,
    imports?: unknown,
  ) => Promise<unknown>;
  const isMarker = (source: unknown) => source === marker || (ArrayBuffer.isView(source) && source.buffer === marker);
  (WebAssembly as { instantiate: unknown }).instantiate = (source: unknown, imports?: unknown) =>
    isMarker(source)
      ? (instantiate(ortWasm, imports) as Promise<WebAssembly.Instance>).then((instance) => ({
          instance,
          module: ortWasm,
        }))
      : instantiate(source, imports);
  ort.env.wasm.wasmBinary = marker;
  ort.env.wasm.numThreads = 1; // Workers have no threads.
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
}

class OrtSession implements Session {
  constructor(
    private readonly session: ort.InferenceSession,
    private readonly entry: ModelEntry,
  ) {}

  async run(input: Float32Array, dims: number[]): Promise<Map<string, OutputTensor>> {
    const feeds = { [this.entry.input.name]: new ort.Tensor("float32", input, dims) };
    return outputsByName(this.entry, await this.session.run(feeds));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export const ortWebEngine: Engine = {
  async createSession(model: Uint8Array, entry: ModelEntry): Promise<Session> {
    useBundledWasm();
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
    return new OrtSession(session, entry);
  },
};
