// The import rules that keep the code readable top-down, checked rather than hoped for:
//   - no import circle inside src/ or inside training/;
//   - training/ imports only go down: cli -> export -> train -> engine -> (model, losses, data, config) -> (onnx, io);
//   - src/ and training/ never import each other (they meet only at models/);
//   - no library file imports scripts/: only scripts/, bench/, test/ and the commands in training/cli/ may.
// Every relative import counts, `import type`, `export ... from` and `import()` included.
// Usage: npx tsx scripts/check-imports.ts [repo root]   (exit 1 with one line per finding)
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";

/** training/'s folders from the top down; a file may import its own layer (circles aside) and any layer below. */
export const TRAINING_LAYERS: readonly (readonly string[])[] = [
  ["cli"],
  ["export"],
  ["train"],
  ["engine"],
  ["model", "losses", "data", "config"],
  ["onnx", "io"],
];
/** The trees whose files may not import each other in a circle. */
const CIRCLE_FREE = ["src", "training", "models"];
/** What is not library code: these may import scripts/. */
const TOP_LEVEL = ["scripts/", "bench/", "test/", "training/cli/"];
const SOURCE = /\.(ts|mts|mjs|js)$/;

/** One file's relative imports, as repository-relative paths with "/" separators. */
export function importsOf(root: string, file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith("./") || spec.startsWith("../"))
    .map((spec) => toRepoPath(root, resolve(root, dirname(file), spec)));
}

function toRepoPath(root: string, absolute: string): string {
  return relative(root, absolute).split(sep).join("/");
}

function sourceFiles(root: string, dir: string): string[] {
  const full = join(root, dir);
  if (!existsSync(full)) return [];
  return readdirSync(full).flatMap((name) => {
    if (name === "node_modules" || name.startsWith(".")) return [];
    const path = `${dir}/${name}`;
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(root, path);
    return SOURCE.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

const topFolder = (path: string) => path.split("/")[0];

/** The rank of a training/ file's folder (0 = top), or undefined for a folder the layering does not name. */
function trainingRank(path: string): number | undefined {
  const folder = path.split("/")[1] ?? "";
  const rank = TRAINING_LAYERS.findIndex((layer) => layer.includes(folder));
  return rank < 0 ? undefined : rank;
}

function layeringFinding(from: string, to: string): string | undefined {
  const [a, b] = [topFolder(from), topFolder(to)];
  if ((a === "src" && b === "training") || (a === "training" && b === "src"))
    return `${from} imports ${to}: src/ and training/ meet only at models/`;
  if (a === "models" && (b === "src" || b === "training"))
    return `${from} imports ${to}: models/ is where src/ and training/ meet, below both`;
  if (b === "scripts" && !TOP_LEVEL.some((top) => from.startsWith(top)))
    return `${from} imports ${to}: library code must not import scripts/`;
  if (a !== "training" || b !== "training") return undefined;
  const [rankFrom, rankTo] = [trainingRank(from), trainingRank(to)];
  if (rankFrom === undefined) return undefined; // reported once per file by checkImports
  if (rankTo === undefined) return `${from} imports ${to}: that folder is not in the training/ layering`;
  if (rankTo < rankFrom) return `${from} imports ${to}: runs up the training/ layering`;
  return undefined;
}

/** Strongly connected components of more than one file (or a file importing itself): Tarjan's algorithm. */
function circles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** Every rule broken under `root`, one line each; empty when the tree is clean. */
export function checkImports(root: string): string[] {
  const library = ["src", "training", "teacher", "models"].flatMap((dir) => sourceFiles(root, dir));
  const findings: string[] = [];
  const graph = new Map<string, string[]>();
  for (const file of library) {
    if (topFolder(file) === "training" && trainingRank(file) === undefined)
      findings.push(`${file}: its folder is not in the training/ layering`);
    const imports = importsOf(root, file);
    graph.set(file, imports);
    for (const target of imports) {
      const finding = layeringFinding(file, target);
      if (finding) findings.push(finding);
    }
  }
  for (const tree of CIRCLE_FREE) {
    const inTree = new Map([...graph].filter(([file]) => topFolder(file) === tree));
    for (const component of circles(inTree)) findings.push(`import circle in ${tree}/: ${component.join(" <-> ")}`);
  }
  return [...new Set(findings)];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const root = resolve(process.argv[2] ?? ".");
  const findings = checkImports(root);
  for (const f of findings) console.error(f);
  if (findings.length > 0) {
    console.error(`check-imports: ${findings.length} finding(s)`);
    process.exit(1);
  }
  console.log("check-imports: no circles, nothing runs up, no library file imports scripts/");
}
