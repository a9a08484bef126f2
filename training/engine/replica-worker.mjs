// Worker-thread entry: Node cannot load TypeScript by itself, so register tsx's loader in this thread
// and import the replica (replica-worker.ts), whatever started the main thread (tsx, vitest).
import { tsImport } from "tsx/esm/api";

await tsImport("./replica-worker.ts", import.meta.url);
