// The import check refuses a circle, an import up the training/ layering, src/ and training/ importing
// each other, and library code importing scripts/, and passes a tree that keeps the rules.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkImports } from "../../scripts/check-imports.ts";

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "check-imports-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, dirname(path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const clean = {
  "training/cli/run.ts": `import { train } from "../train/loop.ts";\nimport "../../scripts/tool.ts";`,
  "training/train/loop.ts": `import type { Model } from "../model/graph.ts";\nexport { step } from "./step.ts";`,
  "training/train/step.ts": `export const step = 1;`,
  "training/model/graph.ts": `import { lossOf } from "../losses/loss.ts";\nimport { write } from "../io/atomic.ts";`,
  "training/losses/loss.ts": `export const lossOf = 1;`,
  "training/io/atomic.ts": `import fs from "node:fs";`,
  "src/app.ts": `import { parseManifest } from "../models/schema.ts";\nimport { a } from "./a.ts";`,
  "src/a.ts": `export const a = 1;`,
  "models/schema.ts": `export const parseManifest = 1;`,
  "scripts/tool.ts": `import { train } from "../training/train/loop.ts";`,
  "test/training/loop.test.ts": `import "../../scripts/tool.ts";`,
};

describe("checkImports", () => {
  it("passes a tree whose imports only go down", () => {
    expect(checkImports(tree(clean))).toEqual([]);
  });

  it("refuses a circle, naming its files, even through `import type`", () => {
    const root = tree({
      ...clean,
      "training/train/step.ts": `import type { step } from "./loop.ts";\nexport const step = 1;`,
    });
    expect(checkImports(root)).toEqual([
      "import circle in training/: training/train/loop.ts <-> training/train/step.ts",
    ]);
  });

  it("refuses a circle in src/ as well", () => {
    const root = tree({ ...clean, "src/a.ts": `export { app } from "./app.ts";` });
    expect(checkImports(root)).toEqual(["import circle in src/: src/a.ts <-> src/app.ts"]);
  });

  it("refuses an import up the layering, a dynamic one included", () => {
    const root = tree({ ...clean, "training/io/atomic.ts": `const m = await import("../losses/loss.ts");` });
    expect(checkImports(root)).toEqual([
      "training/io/atomic.ts imports training/losses/loss.ts: runs up the training/ layering",
    ]);
  });

  it("refuses src/ and training/ importing each other, and library code importing scripts/", () => {
    const root = tree({
      ...clean,
      "training/losses/loss.ts": `import { a } from "../../src/a.ts";`,
      "src/a.ts": `import "../scripts/tool.ts";`,
    });
    expect(checkImports(root).sort()).toEqual([
      "src/a.ts imports scripts/tool.ts: library code must not import scripts/",
      "training/losses/loss.ts imports src/a.ts: src/ and training/ meet only at models/",
    ]);
  });

  it("refuses models/, where the two halves meet, importing either", () => {
    const root = tree({
      ...clean,
      "models/schema.ts": `import { a } from "../src/a.ts";\nimport { lossOf } from "../training/losses/loss.ts";`,
    });
    expect(checkImports(root).sort()).toEqual([
      "models/schema.ts imports src/a.ts: models/ is where src/ and training/ meet, below both",
      "models/schema.ts imports training/losses/loss.ts: models/ is where src/ and training/ meet, below both",
    ]);
  });

  it("refuses a training/ folder the layering does not name", () => {
    const root = tree({
      ...clean,
      "training/misc/util.ts": `export const u = 1;`,
      "training/cli/run.ts": `import { u } from "../misc/util.ts";`,
    });
    expect(checkImports(root).sort()).toEqual([
      "training/cli/run.ts imports training/misc/util.ts: that folder is not in the training/ layering",
      "training/misc/util.ts: its folder is not in the training/ layering",
    ]);
  });

  it("exits 1 from the command line, naming the files", () => {
    const root = tree({ ...clean, "training/io/atomic.ts": `import { lossOf } from "../losses/loss.ts";` });
    let failure: { status: number; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, ["--import", "tsx", "scripts/check-imports.ts", root], { stdio: "pipe" });
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      failure = { status: e.status, stderr: e.stderr.toString() };
    }
    expect(failure?.status).toBe(1);
    expect(failure?.stderr).toContain(
      "training/io/atomic.ts imports training/losses/loss.ts: runs up the training/ layering",
    );
  });
});
