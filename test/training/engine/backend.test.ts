import { mkdtempSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { BACKENDS, currentEngine, initBackend } from "../../../training/engine/backend.ts";
import { nativeBuilt } from "../../../training/engine/machine.ts";

// auto's probe results go to a file of this test run, never the user's cache.
process.env.NARROWDEEP_ENGINE_CACHE = join(mkdtempSync(join(tmpdir(), "engine-probe-")), "engine-probe.json");
const nativeInstalled = nativeBuilt("@tensorflow/tfjs-node-gpu") || nativeBuilt("@tensorflow/tfjs-node");

describe("initBackend", () => {
  it("rejects an unknown backend name, listing the valid ones", async () => {
    await expect(initBackend("tpu")).rejects.toThrow(/unknown backend "tpu".*node-gpu, node, wasm, cpu/);
  });

  it("names why a requested backend cannot load", async () => {
    if (nativeBuilt("@tensorflow/tfjs-node")) return; // only meaningful where it is absent
    await expect(initBackend("node")).rejects.toThrow(/backend "node" is not available: not installed/);
  });

  it("auto picks the fastest engine installed (measured), says why, and keeps it", async () => {
    const lines: string[] = [];
    const engine = await initBackend(undefined, { log: (l) => lines.push(l) });
    expect(BACKENDS).toContain(engine.backend);
    if (!nativeInstalled) {
      expect(engine).toEqual({
        backend: "wasm",
        device: expect.stringMatching(
          /^CPU \(WebAssembly, \d+ threads?, (SIMD|no SIMD); convolutions native \(onnxruntime CPU(, NCHWc block (8|16))?\)\)$/,
        ),
      });
      expect(tf.getBackend()).toBe("wasm");
      expect(lines[0]).toMatch(
        /^engine: auto: wasm, the only engine installed \(tfjs-node and tfjs-node-gpu are not built/,
      );
    } else {
      expect(lines.join("\n")).toMatch(new RegExp(`engine: auto chose ${engine.backend}: \\d+ img/s`));
    }
    expect(lines.at(-1)).toBe(`engine: tfjs backend ${engine.backend} on ${engine.device}`);
    expect(currentEngine()).toEqual(engine);
    expect(await initBackend("auto")).toBe(engine);
    await expect(initBackend(engine.backend === "cpu" ? "wasm" : "cpu")).rejects.toThrow(/already running/);
  });

  it("trains through a convolution on the chosen backend (wasm has its gradient kernels)", async () => {
    await initBackend(undefined, { log: () => {} });
    const x = tf.ones([2, 6, 6, 1]);
    const w = tf.variable(tf.fill([3, 3, 1, 2], 0.1));
    const grads = tf.variableGrads(
      () =>
        tf
          .conv2d(
            tf.pad(x, [
              [0, 0],
              [1, 1],
              [1, 1],
              [0, 0],
            ]) as tf.Tensor4D,
            w as tf.Tensor4D,
            2,
            "valid",
          )
          .sum() as tf.Scalar,
      [w],
    );
    expect(Array.from(grads.grads[w.name]!.dataSync()).every(Number.isFinite)).toBe(true);
    // 3x3 outputs read rows/columns 2o-1+tap: the top-left tap hits padding unless both o >= 1, so it
    // sees ones at 4 of 9 outputs, in 2 images.
    expect(grads.grads[w.name]!.dataSync()[0]).toBeCloseTo(8, 5);
  });
});

describe("startTrainingEngine", () => {
  it("runs data-parallel replicas on wasm and a single thread when asked for one", async () => {
    const { startTrainingEngine } = await import("../../../training/engine/index.ts");
    const lines: string[] = [];
    const one = await startTrainingEngine(undefined, { replicas: 1, log: (l) => lines.push(l) });
    expect(one.replicas).toBe(1);
    await one.close();
    if (one.backend !== "wasm") return;
    const two = await startTrainingEngine("wasm", { replicas: 2, log: (l) => lines.push(l) });
    try {
      expect(two.replicas).toBe(2);
      expect(two.device).toMatch(/^2 data-parallel replicas \(threads\), each CPU \(WebAssembly/);
      expect(lines.at(-1)).toBe(`engine: training data-parallel on ${two.device}`);
    } finally {
      await two.close();
    }
  });
});

describe("defaultReplicas", () => {
  it("takes one replica per idle core, at least 1 and at most 8", async () => {
    const { defaultReplicas } = await import("../../../training/engine/index.ts");
    expect(defaultReplicas(2, 0.1)).toBe(2);
    expect(defaultReplicas(2, 0.8)).toBe(1);
    expect(defaultReplicas(2, 7)).toBe(1);
    expect(defaultReplicas(16, 2.2)).toBe(8);
    expect(defaultReplicas(4, 1.4)).toBe(3);
  });

  it("counts a core that is busy now", async () => {
    const { busyCores } = await import("../../../training/engine/index.ts");
    // A thread spinning for a second keeps one core busy while busyCores samples.
    const spinner = new Worker("const end = Date.now() + 1000; while (Date.now() < end);", { eval: true });
    try {
      await new Promise((resolve) => spinner.once("online", resolve));
      const busy = await busyCores(300);
      expect(busy).toBeGreaterThanOrEqual(0.5);
      expect(busy).toBeLessThanOrEqual(os.cpus().length);
    } finally {
      await spinner.terminate();
    }
  });
});
