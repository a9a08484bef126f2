// Which CPU onnxruntime-node's integer kernels run on. On x86 without VNNI (AVX2, AVX-512 without
// VNNI) they add pairs of uint8 x int8 products in int16 with saturation (quantize.ts, WEIGHT_FORMATS);
// with VNNI they do not, so a native int8 figure means little without the CPU it came from.
// An emulated CPU (qemu-x86_64 -cpu MODEL, Debian's qemu-user) lets a VNNI machine measure what a
// CPU without VNNI computes: the kernels choose by CPUID, which qemu answers for the model.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface CpuDescription {
  /** In words, for the manifest: model and the integer-kernel features that matter. */
  text: string;
  /** Whether the kernels may use VNNI; undefined when unknown (not Linux, not x86). */
  vnni?: boolean;
}

/** CPU models qemu can emulate for the native figure, and what they lack. */
export const EMULATED_CPUS: Record<string, string> = {
  Haswell: "AVX2, no AVX-512, no VNNI",
};

/** The CPU of this machine, from /proc/cpuinfo. */
export function hostCpu(): CpuDescription {
  let info: string;
  try {
    info = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return { text: `${process.arch} (CPU features unknown)` };
  }
  const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? process.arch;
  const flags = new Set(/^flags\s*:\s*(.+)$/m.exec(info)?.[1]?.split(/\s+/) ?? []);
  if (!flags.has("avx2"))
    return { text: `${model} (${process.arch}, no AVX2)`, vnni: flags.has("avx512_vnni") || flags.has("avx_vnni") };
  const vnni = flags.has("avx512_vnni") || flags.has("avx_vnni");
  const avx512 = flags.has("avx512bw");
  return { text: `${model} (${avx512 ? "AVX-512" : "AVX2"}, ${vnni ? "with" : "no"} VNNI)`, vnni };
}

/** The emulated CPU, checked: qemu-x86_64 must be installed and know the model. */
export function emulatedCpu(model: string): CpuDescription & { qemu: string } {
  const lacks = EMULATED_CPUS[model];
  if (!lacks)
    throw new Error(`unknown CPU model to emulate "${model}"; known: ${Object.keys(EMULATED_CPUS).join(", ")}`);
  let qemu: string;
  try {
    qemu = execFileSync("sh", ["-c", "command -v qemu-x86_64"], { encoding: "utf8" }).trim();
  } catch {
    qemu = "";
  }
  if (!qemu)
    throw new Error(`emulating a ${model} CPU needs qemu-x86_64 (Debian's qemu-user package), which is not installed`);
  return { text: `emulated ${model} (qemu-x86_64 -cpu ${model}: ${lacks})`, vnni: false, qemu };
}
