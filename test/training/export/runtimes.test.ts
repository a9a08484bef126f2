// training/export/runtimes.ts and cpu.ts: an int8 student in onnxruntime-web and in onnxruntime-node's
// default session, on this CPU and on an emulated one without VNNI, where int8 weights saturate.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { makeBatch, normalizationTable } from "../../../training/data/batches.ts";
import { loadDataset } from "../../../training/data/index.ts";
import { Rng } from "../../../training/data/rng.ts";
import type { Images } from "../../../training/data/layout.ts";
import { calibrate } from "../../../training/export/calibrate.ts";
import { emulatedCpu, hostCpu } from "../../../training/export/cpu.ts";
import { calibrationImages } from "../../../training/export/int8.ts";
import { decodeModel } from "../../../training/onnx/proto.ts";
import { type Range, type WeightFormatName, planQdq, toQdq } from "../../../training/export/quantize.ts";
import { runtimeLogits, runtimeSession } from "../../../training/export/runtimes.ts";

const hasQemu = (() => {
  try {
    execFileSync("sh", ["-c", "command -v qemu-x86_64"]);
    return true;
  } catch {
    return false;
  }
})();

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe("the two runtimes", () => {
  // The shipped unmodified student (read only): trained activations are what saturates.
  const fp32 = decodeModel(new Uint8Array(readFileSync(new URL("../../../models/unmodified.onnx", import.meta.url))));
  const normalization = { mean: [0.2860796559453306], std: [0.35301348958034995] };
  const plan = planQdq(fp32);
  let ranges: Map<string, Range>;
  let images: Images;
  const int8 = (weights: WeightFormatName) => toQdq(fp32, plan, ranges, { weights });

  beforeAll(async () => {
    const { train, test } = loadDataset("fashion-mnist");
    ranges = await calibrate(fp32, plan.tensors, calibrationImages(train, normalization, 200), { method: "minmax" });
    const batch = makeBatch(
      test,
      Array.from({ length: 64 }, (_, i) => i),
      normalizationTable(normalization),
      null,
      new Rng(0),
    );
    images = { data: batch.images, count: 64, height: 28, width: 28, channels: 1 };
  });

  it("name what ran them: versions, the Worker's session, and the CPU with its VNNI", () => {
    expect(runtimeSession("onnxruntime-web")).toMatch(
      /^onnxruntime-web 1\.\d+\.\d+ WASM SIMD, 1 thread, graph optimization all \(the Worker's session\)$/,
    );
    const cpu = hostCpu();
    expect(runtimeSession("onnxruntime-node")).toMatch(
      /^onnxruntime-node 1\.\d+\.\d+ default session \(graph optimization all\) on /,
    );
    expect(runtimeSession("onnxruntime-node").endsWith(` on ${cpu.text}`)).toBe(true);
    if (cpu.vnni !== undefined) expect(cpu.text).toMatch(cpu.vnni ? /with VNNI\)$/ : /no VNNI\)$/);
    expect(() => emulatedCpu("Pentium")).toThrow(/unknown CPU model to emulate "Pentium"; known: Haswell/);
  });

  it("agree on a uint8-weight student on this CPU", async () => {
    const bytes = int8("uint8");
    const [web, node] = [
      await runtimeLogits("onnxruntime-web", bytes, images),
      await runtimeLogits("onnxruntime-node", bytes, images),
    ];
    expect(web).toHaveLength(640);
    expect(maxAbsDiff(web, node)).toBeLessThanOrEqual(1e-3 * maxAbs(web));
  });

  // About 20 s a model under emulation on 2 cores.
  it.skipIf(!hasQemu)(
    "disagree on int8 weights on a CPU without VNNI (int16 saturation), not on uint8 or 7-bit weights",
    async () => {
      expect(runtimeSession("onnxruntime-node", { emulate: "Haswell" })).toMatch(
        / on emulated Haswell \(qemu-x86_64 -cpu Haswell: AVX2, no AVX-512, no VNNI\)$/,
      );
      for (const weights of ["int8", "uint8", "int7"] as const) {
        const bytes = int8(weights);
        const web = await runtimeLogits("onnxruntime-web", bytes, images);
        const emulated = await runtimeLogits("onnxruntime-node", bytes, images, { emulate: "Haswell" });
        // Measured on 200 test images: int8 weights up to 5.7 apart (logits up to ~20), the others identical.
        if (weights === "int8") expect(maxAbsDiff(web, emulated), weights).toBeGreaterThan(0.05 * maxAbs(web));
        else expect(maxAbsDiff(web, emulated), weights).toBeLessThanOrEqual(1e-3 * maxAbs(web));
      }
    },
    300_000,
  );
});
