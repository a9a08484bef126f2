// backend "auto": the engine probe measures each installed engine in its own process, ranks them by
// training images/s, says why, and caches the result per machine.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nativeBuilt } from "../../../training/engine/machine.ts";
import { type ProbeResult, chooseEngine, measureEngine, rank } from "../../../training/engine/probe.ts";

const nativeInstalled = nativeBuilt("@tensorflow/tfjs-node-gpu") || nativeBuilt("@tensorflow/tfjs-node");
const cacheFile = () => join(mkdtempSync(join(tmpdir(), "engine-probe-")), "engine-probe.json");

describe("rank", () => {
  it("orders engines by measured speed, then wasm and cpu as fallbacks, and names the numbers", () => {
    const results: ProbeResult[] = [
      { backend: "node-gpu", error: "no CUDA device" },
      { backend: "node", imagesPerSecond: 131.2 },
      { backend: "wasm", imagesPerSecond: 452.7 },
    ];
    const choice = rank(results, "probe X");
    expect(choice.order).toEqual(["wasm", "node", "cpu"]);
    expect(choice.why).toBe(
      "auto chose wasm: 453 img/s against node 131 img/s; node-gpu failed (no CUDA device) (probe X)",
    );
    expect(
      rank(
        [
          { backend: "node-gpu", imagesPerSecond: 3000 },
          { backend: "wasm", imagesPerSecond: 400 },
        ],
        "p",
      ).order,
    ).toEqual(["node-gpu", "wasm", "cpu"]);
  });

  it("falls back to wasm when no engine finished", () => {
    const choice = rank(
      [
        { backend: "node", error: "crashed" },
        { backend: "wasm", error: "timeout" },
      ],
      "p",
    );
    expect(choice.order).toEqual(["wasm", "cpu"]);
    expect(choice.why).toMatch(/no engine finished the probe \(node failed \(crashed\); wasm failed \(timeout\)\)/);
  });
});

describe("measureEngine (a child process per engine)", () => {
  it("measures the wasm engine's training images/s", async () => {
    const r = await measureEngine("wasm", 1);
    expect(r.error).toBeUndefined();
    expect(r.imagesPerSecond).toBeGreaterThan(0);
    expect(r.device).toMatch(/WebAssembly/);
  });

  it.skipIf(nativeBuilt("@tensorflow/tfjs-node-gpu"))("says why an engine that is not built cannot run", async () => {
    const r = await measureEngine("node-gpu", 1);
    expect(r.imagesPerSecond).toBeUndefined();
    expect(r.error).toMatch(/backend "node-gpu" is not available/);
  });
});

describe("chooseEngine", () => {
  it.skipIf(nativeInstalled)("without tfjs-node, runs wasm without measuring and caches nothing", async () => {
    const path = cacheFile();
    const choice = await chooseEngine({
      cachePath: path,
      measure: () => Promise.reject(new Error("must not measure")),
    });
    expect(choice.order).toEqual(["wasm", "cpu"]);
    expect(choice.why).toMatch(/the only engine installed/);
    expect(existsSync(path)).toBe(false);
  });

  it.skipIf(!nativeInstalled)(
    `measures once per machine, then answers from the cache${nativeInstalled ? "" : " (skipped: no tfjs-node built here; npm run setup:tfjs-node)"}`,
    async () => {
      const path = cacheFile();
      const measured: string[] = [];
      const measure = (backend: ProbeResult["backend"]) => {
        measured.push(backend);
        return measureEngine(backend, 1);
      };
      const lines: string[] = [];
      const first = await chooseEngine({ cachePath: path, measure, log: (l) => lines.push(l) });
      expect(measured).toContain("wasm");
      expect(lines[0]).toMatch(/^engine: auto: measuring .*wasm on this machine/);
      expect(first.why).toMatch(/^auto chose (node-gpu|node|wasm): \d+ img\/s against /);
      const cached = JSON.parse(readFileSync(path, "utf8")) as { machine: string; results: ProbeResult[] };
      expect(cached.machine).toMatch(/@tensorflow\/tfjs-node /);
      expect(cached.results.map((r) => r.backend)).toEqual(measured);

      const count = measured.length;
      const again = await chooseEngine({ cachePath: path, measure });
      expect(measured.length).toBe(count);
      expect(again.order).toEqual(first.order);
      expect(again.why).toMatch(/cached in .*delete it to measure again/);

      const later = await chooseEngine({ cachePath: path, measure, now: new Date(Date.now() + 31 * 86_400_000) });
      expect(measured.length).toBe(2 * count); // a month later it measures again
      expect(later.order.at(-1)).toBe("cpu");
    },
  );
});
