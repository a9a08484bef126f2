// Child-process entry of the engine probe (probe.ts): Node cannot load TypeScript by itself, so
// register tsx's loader and import probe-child.ts, whatever started the parent (tsx, vitest).
import { tsImport } from "tsx/esm/api";

await tsImport("./probe-child.ts", import.meta.url);
