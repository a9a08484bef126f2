// The two ONNX runtimes an int8 model must agree in: onnxruntime-web's WASM backend (the Worker's
// runtime, run here in Node with the Worker's session options) and onnxruntime-node's default
// session (graph optimization "all": Q/DQ fused into the CPU's integer kernels, as a native user
// runs the file). Integer kernels differ between CPUs (cpu.ts), so the native figure names the CPU
// it came from, and can come from an emulated one (a child process under qemu).
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as ort from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web/wasm";
import type { Images } from "../data/layout.ts";
import { nhwcToNchw } from "../data/layout.ts";
import { type CpuDescription, emulatedCpu, hostCpu } from "./cpu.ts";
import { INPUT_NAME, OUTPUT_NAMES } from "../model/to-onnx.ts";
import { onnxLogits, openSession } from "./verify.ts";

export const RUNTIMES = ["onnxruntime-web", "onnxruntime-node"] as const;
export type Runtime = (typeof RUNTIMES)[number];

/** How the native runtime is run: on this CPU, or on an emulated CPU model (cpu.ts, EMULATED_CPUS). */
export interface NativeSettings {
  emulate?: string;
}

/** How each runtime is run for the figures, in words for the manifest. */
export function runtimeSession(runtime: Runtime, native: NativeSettings = {}): string {
  if (runtime === "onnxruntime-web")
    return `onnxruntime-web ${ortWeb.env.versions.web} WASM SIMD, 1 thread, graph optimization all (the Worker's session)`;
  return `onnxruntime-node ${ort.env.versions.node} default session (graph optimization all) on ${nativeCpu(native).text}`;
}

function nativeCpu(native: NativeSettings): CpuDescription {
  return native.emulate ? emulatedCpu(native.emulate) : hostCpu();
}

let webConfigured = false;

/** onnxruntime-web as the Worker runs it: one thread, no proxy worker. */
function configureWeb(): void {
  if (webConfigured) return;
  webConfigured = true;
  ortWeb.env.wasm.numThreads = 1;
  ortWeb.env.wasm.proxy = false;
  ortWeb.env.logLevel = "error";
}

/** Logits [count, classes] of the model in onnxruntime-web, in batches. */
async function webLogits(onnx: Uint8Array, images: Images, batchSize = 256): Promise<Float32Array> {
  configureWeb();
  const session = await ortWeb.InferenceSession.create(onnx, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  try {
    const chunks: Float32Array[] = [];
    for (let i = 0; i < images.count; i += batchSize) {
      const n = Math.min(batchSize, images.count - i);
      const input = new ortWeb.Tensor("float32", nhwcToNchw(images, i, n), [
        n,
        images.channels,
        images.height,
        images.width,
      ]);
      const out = await session.run({ [INPUT_NAME]: input }, [OUTPUT_NAMES[0]]);
      // Copied: the output's data is a view of WASM memory that the next run may reuse.
      chunks.push(Float32Array.from(out[OUTPUT_NAMES[0]]!.data as Float32Array));
    }
    const all = new Float32Array(chunks.reduce((a, c) => a + c.length, 0));
    let offset = 0;
    for (const c of chunks) {
      all.set(c, offset);
      offset += c.length;
    }
    return all;
  } finally {
    await session.release();
  }
}

const CHILD = join(import.meta.dirname, "native-logits.ts");

/** Logits of the model in onnxruntime-node's default session, on this CPU or an emulated one. */
async function nodeLogits(onnx: Uint8Array, images: Images, native: NativeSettings): Promise<Float32Array> {
  if (!native.emulate) {
    const session = await openSession(onnx);
    try {
      return await onnxLogits(session, images);
    } finally {
      await session.release();
    }
  }
  const { qemu } = emulatedCpu(native.emulate);
  const dir = mkdtempSync(join(tmpdir(), "native-logits-"));
  try {
    const [model, input, output] = ["model.onnx", "input.f32", "logits.f32"].map((f) => join(dir, f)) as [
      string,
      string,
      string,
    ];
    const x = nhwcToNchw(images, 0, images.count);
    writeFileSync(model, onnx);
    writeFileSync(input, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    const dims = [images.count, images.channels, images.height, images.width].map(String);
    await promisify(execFile)(
      qemu,
      ["-cpu", native.emulate, process.execPath, "--import", "tsx", CHILD, model, input, output, ...dims],
      { maxBuffer: 1 << 20 },
    ).catch((err: { stderr?: string; message: string }) => {
      throw new Error(
        `onnxruntime-node under an emulated ${native.emulate} CPU failed: ${
          (err.stderr ?? "")
            .split("\n")
            .filter((l) => l && !l.includes("TCG doesn't support"))
            .join("; ") || err.message
        }`,
      );
    });
    const bytes = readFileSync(output);
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Logits [count, classes] of the model in one runtime. */
export function runtimeLogits(
  runtime: Runtime,
  onnx: Uint8Array,
  images: Images,
  native: NativeSettings = {},
): Promise<Float32Array> {
  return runtime === "onnxruntime-web" ? webLogits(onnx, images) : nodeLogits(onnx, images, native);
}
