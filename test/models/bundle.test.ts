// scripts/bundle-models.ts: the module through which the Worker gets models/, and what
// `wrangler deploy` would upload with it.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type Manifest, parseManifest } from "../../models/schema.ts";
import { bundleModels, bundleSource, servedStudents } from "../../scripts/bundle-models.ts";
import { entry } from "./entry.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function modelsDir(): string {
  const d = mkdtempSync(join(tmpdir(), "nd-bundle-"));
  dirs.push(d);
  return d;
}

function write(dir: string, manifest: Manifest, files: string[]): void {
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  for (const f of files) writeFileSync(join(dir, f), "onnx");
}

describe("bundleModels", () => {
  it("imports the manifest and the students' files, not the teachers'", () => {
    const dir = modelsDir();
    write(
      dir,
      {
        schemaVersion: 1,
        defaultStudent: "narrow-deep",
        serve: ["wide"],
        models: [entry("narrow-deep", "student"), entry("wide", "student"), entry("teacher", "teacher")],
      },
      ["narrow-deep.onnx", "wide.onnx"],
    );
    bundleModels(dir);
    const source = readFileSync(join(dir, "bundle.ts"), "utf8");
    expect(source).toContain('import manifest from "./manifest.json";');
    expect(source).toContain('import file0 from "./narrow-deep.onnx";');
    expect(source).toContain('"wide.onnx": file1,');
    expect(source).not.toContain("teacher.onnx");
  });

  it("bundles the default student and the serve list's, and leaves the other students out of the Worker's manifest", () => {
    const dir = modelsDir();
    const models = [
      entry("teacher", "teacher"),
      entry("narrow-deep", "student"),
      entry("narrow-deep-baseline", "student"),
      entry("wide", "student"),
      entry("wide-int8", "student"),
    ];
    const files = models.filter((m) => m.role === "student").map((m) => m.file);
    write(dir, { schemaVersion: 1, defaultStudent: "wide", models }, files);
    expect(bundleModels(dir)).toEqual(["wide"]);
    let source = readFileSync(join(dir, "bundle.ts"), "utf8");
    expect(source.match(/^import file\d+ from .*$/gm)).toEqual(['import file0 from "./wide.onnx";']);
    expect(source).toContain('const served = new Set(["wide"]);');
    expect(source).toContain('models: all.models.filter((m) => m.role === "teacher" || served.has(m.name))');
    write(
      dir,
      { schemaVersion: 1, defaultStudent: "wide", serve: ["wide-int8", "narrow-deep", "wide"], models },
      files,
    );
    expect(bundleModels(dir)).toEqual(["wide", "wide-int8", "narrow-deep"]);
    source = readFileSync(join(dir, "bundle.ts"), "utf8");
    expect(source).toContain('"wide-int8.onnx": file1,');
    expect(source).not.toContain("narrow-deep-baseline");
    expect(
      servedStudents(parseManifest(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")))).map((m) => m.name),
    ).toEqual(["wide", "wide-int8", "narrow-deep"]);
  });

  it("gives an empty registry without a manifest", () => {
    const source = bundleSource(modelsDir());
    expect(source).toContain(
      'export const manifestJson: unknown = {"schemaVersion":1,"defaultStudent":"none","models":[]};',
    );
    expect(source).toContain("export const modelFiles: Record<string, ArrayBuffer> = {};");
  });

  it("refuses a manifest naming a missing file, or an invalid one", () => {
    const dir = modelsDir();
    write(dir, { schemaVersion: 1, defaultStudent: "narrow-deep", models: [entry("narrow-deep", "student")] }, []);
    expect(() => bundleModels(dir)).toThrow(/narrow-deep's file .*narrow-deep.onnx does not exist/);
    writeFileSync(join(dir, "manifest.json"), JSON.stringify({ schemaVersion: 2 }));
    expect(() => bundleModels(dir)).toThrow(/schemaVersion/);
    write(
      dir,
      {
        schemaVersion: 1,
        defaultStudent: "narrow-deep",
        serve: ["narrow-deep-int8"],
        models: [entry("narrow-deep", "student")],
      },
      ["narrow-deep.onnx"],
    );
    expect(() => bundleModels(dir)).toThrow('manifest serve[0]: "narrow-deep-int8" is not a model in models');
  });

  it("leaves a current bundle untouched", () => {
    const dir = modelsDir();
    write(dir, { schemaVersion: 1, defaultStudent: "narrow-deep", models: [entry("narrow-deep", "student")] }, [
      "narrow-deep.onnx",
    ]);
    bundleModels(dir);
    const before = statSync(join(dir, "bundle.ts")).mtimeMs;
    bundleModels(dir);
    expect(statSync(join(dir, "bundle.ts")).mtimeMs).toBe(before);
  });
});

describe("the deployed bundle", () => {
  const repo = fileURLToPath(new URL("../..", import.meta.url));

  it("is what wrangler would upload for the shipped models: the served students only, at most 5 MB gzip", () => {
    const outdir = modelsDir();
    // The real build: wrangler.toml's build step regenerates models/bundle.ts, then esbuild bundles the Worker.
    const r = spawnSync(join(repo, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", outdir], {
      cwd: repo,
      encoding: "utf8",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    expect(r.status, r.stderr).toBe(0);
    const served = servedStudents(
      parseManifest(JSON.parse(readFileSync(join(repo, "models/manifest.json"), "utf8"))),
    ).map((m) => m.file);
    expect(
      readdirSync(outdir)
        .filter((f) => f.endsWith(".onnx"))
        .map((f) => f.replace(/^[0-9a-f]+-/, ""))
        .sort(),
    ).toEqual([...served].sort());
    // wrangler's own figures: "Total Upload: 15513.01 KiB / gzip: 4794.19 KiB".
    const [, raw, gzip] = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(r.stdout) ?? [];
    expect(gzip, r.stdout).toBeDefined();
    expect(Number(gzip) * 1024).toBeLessThanOrEqual(5_000_000); // this project's target
    expect(Number(raw) * 1024).toBeLessThanOrEqual(64 * 2 ** 20); // Cloudflare's limit, on every plan
  }, 120_000);
});
