// Picks the TensorFlow.js backend at run time: the fastest one on this machine (measured once by
// probe.ts, then cached), or the one asked for.
// Training code uses the tfjs API only, so the same code runs on a CUDA box (tfjs-node-gpu), a CPU box
// with libtensorflow (tfjs-node), or anywhere (wasm, then pure-JS cpu).
import os from "node:os";
import * as tf from "@tensorflow/tfjs";
import type { Convolutions } from "../config/schema.ts";
import { gpuName } from "./machine.ts";
import { nchwcBlock, useNativeConvolutions } from "./native-conv.ts";
import { chooseEngine } from "./probe.ts";
import { registerWasmTrainingKernels } from "./wasm-kernels.ts";

export const BACKENDS = ["node-gpu", "node", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Engine {
  /** Which of BACKENDS runs. */
  backend: BackendName;
  /** What actually computes, e.g. "CUDA GPU (NVIDIA H100)" or "CPU (WebAssembly, 1 thread, SIMD)". */
  device: string;
}

export { CONVOLUTIONS, type Convolutions } from "../config/schema.ts";

export interface InitOptions {
  /** Where the chosen engine and the skipped ones are reported; defaults to console.log. */
  log?: (line: string) => void;
  /** Convolutions on the wasm backend; default "auto". */
  convolutions?: Convolutions;
}

export function isBackendName(name: string): name is BackendName {
  return (BACKENDS as readonly string[]).includes(name);
}

// Package names in variables, so that TypeScript and bundlers do not insist they are installed.
const TFJS_NODE_GPU = "@tensorflow/tfjs-node-gpu";
const TFJS_NODE = "@tensorflow/tfjs-node";

function reason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e?.code === "ERR_MODULE_NOT_FOUND" || e?.code === "MODULE_NOT_FOUND")
    return "not installed (an optional dependency, skipped where libtensorflow cannot be downloaded)";
  return (e?.message ?? String(err)).split("\n")[0]!;
}

async function activate(name: string): Promise<void> {
  // setBackend reports a failed backend initialization by resolving false (and a console warning).
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not initialize its "${name}" backend`);
  await tf.ready();
}

/**
 * Imports tfjs-node or tfjs-node-gpu, which registers the "tensorflow" backend. TensorFlow 2.21's
 * oneDNN Conv2DBackpropFilter corrupts the heap on a 1x1 stride-2 convolution over an even-sized
 * input (every projection shortcut here), so oneDNN's kernels are off unless the environment says
 * otherwise (Eigen's run instead): set before the import, which loads TensorFlow.
 */
export async function importNative(pkg: string): Promise<void> {
  process.env.TF_ENABLE_ONEDNN_OPTS ??= "0";
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "1";
  await import(/* @vite-ignore */ pkg);
  // tfjs-node registers "tensorflow" with the tfjs-core it imports; if npm gave it its own copy
  // (a version mismatch), our tfjs never sees it.
  if (!tf.findBackendFactory("tensorflow"))
    throw new Error(`${pkg} loaded but registered no backend with this @tensorflow/tfjs (versions differ?)`);
}

async function loadNative(pkg: string): Promise<{ isUsingGpuDevice?: boolean }> {
  await importNative(pkg);
  await activate("tensorflow");
  return tf.backend() as unknown as { isUsingGpuDevice?: boolean };
}

/** Switches the wasm backend's convolutions as asked; returns how they run, for the device string. */
function chooseConvolutions(want: Convolutions, log: (line: string) => void): string {
  if (want !== "wasm") {
    try {
      useNativeConvolutions(true);
      const block = nchwcBlock();
      return `convolutions native (onnxruntime CPU${block ? `, NCHWc block ${block}` : ""})`;
    } catch (err) {
      if (want === "native") throw new Error(`native convolutions need onnxruntime-node: ${reason(err)}`);
      log(`engine: convolutions stay on wasm: onnxruntime-node did not load (${reason(err)})`);
    }
  }
  useNativeConvolutions(false);
  return "convolutions XNNPACK";
}

const loaders: Record<BackendName, (options: Required<InitOptions>) => Promise<string>> = {
  "node-gpu": async () => {
    const backend = await loadNative(TFJS_NODE_GPU);
    if (backend.isUsingGpuDevice) {
      const name = gpuName();
      return name ? `CUDA GPU (${name})` : "CUDA GPU";
    }
    return `CPU (libtensorflow GPU build found no CUDA device; ${os.availableParallelism()} threads)`;
  },
  node: async () => {
    await loadNative(TFJS_NODE);
    return `CPU (libtensorflow, ${os.availableParallelism()} threads)`;
  },
  wasm: async ({ convolutions, log }) => {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    registerWasmTrainingKernels();
    const conv = chooseConvolutions(convolutions, log);
    await activate("wasm");
    const threads = wasm.getThreadsCount();
    const simd = tf.env().getBool("WASM_HAS_SIMD_SUPPORT") ? "SIMD" : "no SIMD";
    return `CPU (WebAssembly, ${threads} thread${threads === 1 ? "" : "s"}, ${simd}; ${conv})`;
  },
  cpu: async () => {
    await activate("cpu");
    return "CPU (plain JavaScript, 1 thread)";
  },
};

/** The backends `auto` tries, best first, by the measured probe (probe.ts); logs why. */
async function autoOrder(log: (line: string) => void): Promise<readonly BackendName[]> {
  const choice = await chooseEngine({ log });
  log(`engine: ${choice.why}`);
  return choice.order;
}

let current: Engine | undefined;

/**
 * Initializes tfjs on `requested` ("node-gpu" | "node" | "wasm" | "cpu"; "auto" or undefined: the
 * fastest installed one that loads, by the probe) and reports what runs and why. A requested backend that fails is an error
 * naming why. Calling it again with the engine already running returns it.
 *
 * @example
 * ```ts
 * import { initBackend } from "./engine/index.ts";
 *
 * const engine = await initBackend("auto", { convolutions: "auto" });
 * console.log(`${engine.backend} on ${engine.device}`);
 * ```
 */
export async function initBackend(
  requested?: string,
  { log = console.log, convolutions = "auto" }: InitOptions = {},
): Promise<Engine> {
  const want = requested === undefined || requested === "auto" ? undefined : requested;
  if (want !== undefined && !isBackendName(want))
    throw new Error(`unknown backend "${want}" (choose one of: auto, ${BACKENDS.join(", ")})`);
  if (current && (want === undefined || want === current.backend)) return current;
  if (current)
    throw new Error(`backend ${current.backend} is already running in this process; cannot switch to ${want}`);

  const candidates = want ? [want] : await autoOrder(log);
  const skipped: string[] = [];
  for (const backend of candidates) {
    try {
      const device = await loaders[backend]({ log, convolutions });
      current = { backend, device };
      if (skipped.length > 0) log(`engine: skipped ${skipped.join("; ")}`);
      log(`engine: tfjs backend ${backend} on ${device}`);
      return current;
    } catch (err) {
      if (want) throw new Error(`backend "${want}" is not available: ${reason(err)}`);
      skipped.push(`${backend} (${reason(err)})`);
    }
  }
  throw new Error(`no tfjs backend could be loaded: ${skipped.join("; ")}`);
}

/** The engine initBackend chose in this process, if any. */
export function currentEngine(): Engine | undefined {
  return current;
}
