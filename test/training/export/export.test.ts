// exportRun / exportCheckpoint end to end on temporary run and models folders: what lands in the
// manifest, replacement of a model only by a verified one, and the refusals.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../../../models/schema.ts";
import { regenerateFromManifest } from "../../../scripts/generated-from-manifest.ts";
import { RESULTS_BEGIN, RESULTS_END } from "../../../scripts/results-table.ts";
import { initBackend } from "../../../training/engine/backend.ts";
import {
  type ExportOptions,
  ExportRefusedError,
  ExportVerificationError,
  exportCheckpoint,
  exportRun,
} from "../../../training/export/index.ts";
import { nativeConvolutionsActive, nativeGraphCount } from "../../../training/engine/native-conv.ts";
import { countMacs, countParams } from "../../../training/model/graph.ts";
import { saveCheckpoint } from "../../../training/train/checkpoint.ts";
import { fixtureCheckpoint, fixtureRunDir as runDir } from "./fixtures.ts";

// int8 variants have their own tests (int8.test.ts); here they would only double the time.
const quiet = { log: () => {}, accuracySamples: 256, int8: false } satisfies ExportOptions;
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
/** Every file of a folder with its bytes, to show a failed export changed nothing (the Triton folder is derived from them). */
const snapshot = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir, { withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) => [f.name, sha256(join(dir, f.name))]),
  );

beforeAll(async () => {
  await initBackend("wasm", { log: () => {} });
});

describe("exportRun", () => {
  let run: string;
  let models: string;
  let readme: string;
  let plot: string;

  beforeAll(async () => {
    run = runDir([
      { architecture: "teacher", role: "teacher" },
      { architecture: "narrow-deep" },
      { architecture: "narrow-deep", name: "narrow-deep-ce", loss: { name: "ce", options: {} }, seed: 2 },
      { architecture: "wide" },
      {
        architecture: "unmodified",
        name: "unmodified-alpha0",
        loss: { name: "kd", options: { temperature: 4, alpha: 0 } },
      },
    ]);
    models = tmp("models-");
    readme = join(tmp("readme-"), "README.md");
    writeFileSync(readme, `# x\n\n## Results\n\n${RESULTS_BEGIN}\nold\n${RESULTS_END}\n\n## Tests\n`);
    plot = join(tmp("plot-"), "plot.svg");
    const written = await exportRun(run, { ...quiet, modelsDir: models });
    regenerateFromManifest(written.modelsDir, written.manifest, { readme, plot });
  });

  it("writes one verified ONNX file per sub-run and a valid manifest describing each", () => {
    const manifest = parseManifest(JSON.parse(readFileSync(join(models, "manifest.json"), "utf8")));
    expect(manifest.models.map((m) => m.name)).toEqual([
      "teacher",
      "narrow-deep",
      "narrow-deep-baseline",
      "unmodified-baseline",
      "wide",
    ]);
    expect(manifest.defaultStudent).toBe("narrow-deep");
    for (const m of manifest.models) {
      expect(m.role).toBe(m.name === "teacher" ? "teacher" : "student");
      expect(m.file).toBe(`${m.name}.onnx`);
      expect(m.sha256).toBe(sha256(join(models, m.file)));
      expect(m.bytes).toBe(readFileSync(join(models, m.file)).length);
      expect(m.version).toBe(basename(run));
      expect(m.input).toEqual({ name: "input", shape: [-1, 1, 28, 28], datatype: "FP32", layout: "NCHW" });
      expect(m.outputs.map((o) => [o.name, o.shape])).toEqual([
        ["logits", [-1, 10]],
        ["probabilities", [-1, 10]],
      ]);
      expect(m.normalization).toEqual({ mean: [0.286], std: [0.353] });
      expect(m.labels).toHaveLength(10);
      expect(m.metrics.accuracy).toMatchObject({ dataset: "fashion-mnist", split: "test", samples: 256 });
      expect(m.export).toMatchObject({ samples: 512, top1Agreement: 1, opset: 13 });
      expect(m.export!.maxAbsLogitDiff).toBeLessThanOrEqual(1e-4);
      expect(m.export!.checker).toMatch(/^passed \(onnx 1\.\d+/);
      expect(m.training).toMatchObject({
        run: basename(run),
        engine: "tfjs",
        backend: "cpu",
        finished: true,
        config: { preset: "test" },
      });
    }
    const nd = fixtureCheckpoint({ architecture: "narrow-deep", widthScale: 0.125 }).graph;
    expect(manifest.models[1]!.metrics).toMatchObject({ params: countParams(nd), macs: countMacs(nd) });
    expect(manifest.models[1]!.training!.loss).toEqual({ name: "kd", options: { temperature: 4, alpha: 0.9 } });
  });

  it("makes each ONNX file describe its input layout, normalization and labels (metadata_props)", () => {
    const py = spawnSync(
      "/usr/bin/python3",
      [
        "-c",
        "import onnx,sys,json; m=onnx.load(sys.argv[1]); print(json.dumps({p.key: p.value for p in m.metadata_props}))",
        join(models, "narrow-deep.onnx"),
      ],
      { encoding: "utf8" },
    );
    expect(py.status, py.stderr).toBe(0);
    const props = JSON.parse(py.stdout) as Record<string, string>;
    expect(props.input_layout).toBe("NCHW");
    expect(JSON.parse(props.normalization!)).toEqual({ mean: [0.286], std: [0.353] });
    expect(JSON.parse(props.labels!)).toHaveLength(10);
    expect(props.run).toBe(basename(run));
  });

  it("leaves no staging folder or lock, regenerates the Worker bundle and the README table", () => {
    expect(readdirSync(models).sort()).toEqual([
      "bundle.ts",
      "manifest.json",
      "narrow-deep-baseline.onnx",
      "narrow-deep.onnx",
      "teacher.onnx",
      "triton",
      "unmodified-baseline.onnx",
      "wide.onnx",
    ]);
    expect(readFileSync(join(models, "bundle.ts"), "utf8")).toContain('"narrow-deep.onnx"');
    const text = readFileSync(readme, "utf8");
    expect(text).not.toContain("\nold\n");
    expect(text).toMatch(
      /\| \*\*narrow-deep\*\* \(default\) \| student \| narrow-deep ×0\.125 \| 1\.7 k \| 184\.3 k \| \d+\.\d\d% \| {2}\| [+-]\d+\.\d\d \| {2}\| KD T=4 α=0\.9, 1 epoch on 1,000 images \|/,
    );
    expect(text).toContain("| teacher | teacher | teacher ×0.125 |");
    expect(text.endsWith(`${RESULTS_END}\n\n## Tests\n`)).toBe(true);
    // The plot: the teacher as a square, KD students filled, baselines hollow, one of each per model.
    const svg = readFileSync(plot, "utf8");
    expect(svg.match(/<rect class="teacher"/g)).toHaveLength(1);
    expect(svg.match(/<circle class="kd"/g)).toHaveLength(2); // narrow-deep, wide
    expect(svg.match(/<circle class="baseline"/g)).toHaveLength(2); // narrow-deep-baseline, unmodified-baseline
  });

  it("replaces a model only with a verified one", async () => {
    const before = parseManifest(JSON.parse(readFileSync(join(models, "manifest.json"), "utf8")));
    const files = snapshot(models);

    // Diverged training: NaN weights give NaN logits, which never pass the parity check.
    const broken = fixtureCheckpoint({ architecture: "narrow-deep", widthScale: 0.125, seed: 7 });
    broken.weights.get("fc.bias")!.data.fill(Number.NaN);
    const brokenPath = join(tmp("ckpt-"), "broken.ndckpt");
    saveCheckpoint(brokenPath, broken);
    const failed = exportCheckpoint(brokenPath, { ...quiet, modelsDir: models });
    await expect(failed).rejects.toThrow(ExportVerificationError);
    await expect(failed).rejects.toThrow(
      /narrow-deep .*broken\.ndckpt\): ONNX export does not match tfjs: max \|logit difference\| Infinity/,
    );
    expect(snapshot(models)).toEqual(files);

    const better = fixtureCheckpoint({ architecture: "narrow-deep", widthScale: 0.125, seed: 8 });
    const betterPath = join(tmp("ckpt-"), "better.ndckpt");
    saveCheckpoint(betterPath, better);
    await exportCheckpoint(betterPath, { ...quiet, modelsDir: models });
    const after = parseManifest(JSON.parse(readFileSync(join(models, "manifest.json"), "utf8")));
    expect(after.models.map((m) => m.name)).toEqual(before.models.map((m) => m.name));
    const changed = after.models.filter((m, i) => JSON.stringify(m) !== JSON.stringify(before.models[i]));
    expect(changed.map((m) => m.name)).toEqual(["narrow-deep"]);
    expect(changed[0]!.sha256).toBe(sha256(join(models, "narrow-deep.onnx")));
    expect(changed[0]!.sha256).not.toBe(before.models[1]!.sha256);
  });

  it("never replaces a model trained on more images or for more epochs, unless forced", async () => {
    const files = snapshot(models);
    const smaller = fixtureCheckpoint({ architecture: "wide", widthScale: 0.125, seed: 9 });
    smaller.meta.dataset.trainSamples = 500; // the manifest's wide saw 1000 images an epoch
    const path = join(tmp("ckpt-"), "smaller.ndckpt");
    saveCheckpoint(path, smaller);
    const refused = exportCheckpoint(path, { ...quiet, modelsDir: models });
    await expect(refused).rejects.toThrow(ExportRefusedError);
    await expect(refused).rejects.toThrow(
      /refused: wide in the manifest was trained on 1000 images, the new one on 500 \(pass --force/,
    );
    expect(snapshot(models)).toEqual(files);
    const shorter = fixtureCheckpoint({ architecture: "wide", widthScale: 0.125, seed: 9 });
    shorter.meta.epoch = 0;
    saveCheckpoint(path, shorter);
    await expect(exportCheckpoint(path, { ...quiet, modelsDir: models, allowUnfinished: true })).rejects.toThrow(
      /wide in the manifest was trained for 1 epochs, the new one for 0/,
    );
    await exportCheckpoint(path, { ...quiet, modelsDir: models, allowUnfinished: true, force: true });
    expect(snapshot(models)["wide.onnx"]).not.toBe(files["wide.onnx"]);
  });

  it("checks the export against tfjs on its own kernels, not against onnxruntime's", async () => {
    // A geometry no test has built: any native graph built during the export would be the reference's.
    const odd = fixtureCheckpoint({ architecture: "unmodified", widthScale: 0.3, seed: 3 });
    const path = join(tmp("ckpt-"), "odd.ndckpt");
    saveCheckpoint(path, odd);
    expect(nativeConvolutionsActive()).toBe(true);
    const graphs = nativeGraphCount();
    await exportCheckpoint(path, { ...quiet, modelsDir: tmp("models-"), name: "odd" });
    expect(nativeGraphCount()).toBe(graphs);
    expect(nativeConvolutionsActive()).toBe(true); // and training's kernels are back
  });
});

describe("exportRun with several seeds", () => {
  it("ships each model's seed closest to the mean, with every seed's accuracy", async () => {
    const accs = { 1: 0.9, 2: 0.92, 3: 0.97 }; // mean 0.93: seed 2 is the closest
    const run = runDir(
      Object.entries(accs).flatMap(([seed, testAccuracy]) => [
        { architecture: "wide", name: `wide-kd-s${seed}`, seed: Number(seed), testAccuracy },
        {
          architecture: "wide",
          name: `wide-baseline-s${seed}`,
          seed: Number(seed),
          testAccuracy: testAccuracy - 0.01,
          loss: { name: "ce", options: {} },
        },
      ]),
    );
    const models = tmp("models-");
    await exportRun(run, { ...quiet, modelsDir: models });
    const manifest = parseManifest(JSON.parse(readFileSync(join(models, "manifest.json"), "utf8")));
    expect(manifest.models.map((m) => m.name)).toEqual(["wide", "wide-baseline"]);
    const wide = manifest.models[0]!;
    expect(wide.metrics.accuracy!.seeds).toMatchObject({ n: 3, shipped: 2, bySeed: { 1: 0.9, 2: 0.92, 3: 0.97 } });
    expect(wide.metrics.accuracy!.seeds!.mean).toBeCloseTo(0.93, 10);
    expect(wide.metrics.accuracy!.seeds!.sd).toBeCloseTo(Math.sqrt((0.03 ** 2 + 0.01 ** 2 + 0.04 ** 2) / 2), 10);
    expect(wide.training!.subRun).toBe("wide-kd-s2");
    expect(manifest.models[1]!.training!.subRun).toBe("wide-baseline-s2");
  });
});

describe("export refusals", () => {
  it("refuses unfinished sub-runs unless asked, and empty or missing run folders", async () => {
    const run = runDir([{ architecture: "wide", done: false }]);
    const models = tmp("models-");
    await expect(exportRun(run, { ...quiet, modelsDir: models })).rejects.toThrow(
      /wide-kd has not finished training \(1 epochs done\).*--allow-unfinished/,
    );
    expect(readdirSync(models)).toEqual([]);
    const done = await exportRun(run, { ...quiet, modelsDir: models, allowUnfinished: true });
    expect(done.entries.map((e) => [e.name, e.training!.finished])).toEqual([["wide", false]]);
    await expect(exportRun(tmp("empty-"), { ...quiet, modelsDir: models })).rejects.toThrow(
      /no checkpoints \(\*\.ndckpt\) found/,
    );
    await expect(exportRun(join(tmpdir(), "no-such-run"), quiet)).rejects.toThrow(
      /no-such-run: run directory not found/,
    );
    await expect(
      exportCheckpoint(join(run, "wide-kd", "last.ndckpt"), { ...quiet, modelsDir: models, name: "Wide Model" }),
    ).rejects.toThrow(`model name "Wide Model" must be lowercase`);
  });

  it("refuses a manifest without a student and a damaged checkpoint", async () => {
    const run = runDir([{ architecture: "teacher", role: "teacher" }]);
    const models = tmp("models-");
    await expect(exportRun(run, { ...quiet, modelsDir: models })).rejects.toThrow(/needs at least one student/);
    expect(existsSync(join(models, "manifest.json"))).toBe(false);
    const path = join(run, "teacher", "last.ndckpt");
    const bytes = readFileSync(path);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    writeFileSync(path, bytes);
    await expect(exportCheckpoint(path, { ...quiet, modelsDir: models })).rejects.toThrow(
      /last\.ndckpt: tensor data does not match its checksum/,
    );
  });
});
