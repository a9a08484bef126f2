// onnxruntime-node as the model store's engine on the teacher host: CUDA when the machine has it (and
// onnxruntime-node's CUDA libraries are installed), else the CPU. Which one a session got is kept, so
// the host can say so at start and in its model metadata.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import type { ModelEntry } from "../models/schema.ts";
import type { Engine, Session } from "../src/models/engine.ts";
import type { OutputTensor } from "../src/oip/response.ts";

export type ExecutionProvider = "cuda" | "cpu";
/** "auto" tries CUDA first and falls back to the CPU. */
export type ProviderChoice = ExecutionProvider | "auto";

export interface NodeEngine extends Engine {
  /** The provider of the last session created; undefined before the first. */
  readonly provider: ExecutionProvider | undefined;
  /** Why "auto" fell back to the CPU, when it did. */
  readonly fallbackReason: string | undefined;
}

class NodeSession implements Session {
  constructor(
    private readonly session: ort.InferenceSession,
    private readonly entry: ModelEntry,
  ) {}

  async run(input: Float32Array, dims: number[]): Promise<Map<string, OutputTensor>> {
    const results = await this.session.run({ [this.entry.input.name]: new ort.Tensor("float32", input, dims) });
    const out = new Map<string, OutputTensor>();
    for (const spec of this.entry.outputs) {
      const t = results[spec.name];
      if (!t || !(t.data instanceof Float32Array))
        throw new Error(`model "${this.entry.name}" gave no FP32 output "${spec.name}"`);
      out.set(spec.name, { dims: [...t.dims], data: t.data });
    }
    return out;
  }
}

/**
 * Why CUDA cannot work here, or undefined when it may. onnxruntime-node ships its CUDA provider as a
 * separate download (its install script fetches it unless told to skip); without the library the
 * attempt can only fail, noisily, so it is not made.
 */
function cudaMissing(): string | undefined {
  if (process.platform !== "linux" && process.platform !== "win32")
    return `no CUDA build of onnxruntime-node for ${process.platform}`;
  const binDir = join(
    dirname(createRequire(import.meta.url).resolve("onnxruntime-node")),
    "..",
    "bin",
    "napi-v6",
    process.platform,
    process.arch,
  );
  const lib = process.platform === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
  if (!existsSync(join(binDir, lib)))
    return `onnxruntime-node's CUDA provider is not installed (fetch it with: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install)`;
  return undefined;
}

function open(bytes: Uint8Array, provider: ExecutionProvider): Promise<ort.InferenceSession> {
  // Severity 4 (fatal only) on the CUDA attempt: when its libraries are missing ORT would print a
  // multi-line error before rejecting; the rejection's message is what the host reports.
  return ort.InferenceSession.create(bytes, {
    executionProviders: [provider],
    graphOptimizationLevel: "all",
    logSeverityLevel: provider === "cuda" ? 4 : 3,
  });
}

export function nodeEngine(choice: ProviderChoice = "auto"): NodeEngine {
  let provider: ExecutionProvider | undefined;
  let fallbackReason: string | undefined;

  async function openCuda(bytes: Uint8Array): Promise<ort.InferenceSession | undefined> {
    fallbackReason = cudaMissing();
    if (fallbackReason !== undefined) return undefined;
    try {
      return await open(bytes, "cuda");
    } catch (err) {
      fallbackReason = err instanceof Error ? err.message : String(err);
      return undefined;
    }
  }

  return {
    get provider() {
      return provider;
    },
    get fallbackReason() {
      return fallbackReason;
    },
    async createSession(bytes, entry) {
      const cuda = choice === "cpu" ? undefined : await openCuda(bytes);
      if (cuda) {
        provider = "cuda";
        return new NodeSession(cuda, entry);
      }
      if (choice === "cuda") throw new Error(`CUDA unavailable: ${fallbackReason}`);
      provider = "cpu";
      return new NodeSession(await open(bytes, "cpu"), entry);
    },
  };
}
