// onnxruntime-web's WASM build in Node, one thread, the Worker's session options: the Worker's engine
// without the Worker. Run in a child process of its own, so that V8 flags can differ:
//   default              Node installs V8's WebAssembly trap handler: out-of-bounds memory accesses
//                        are caught by a signal handler, and compiled code has no bounds checks;
//   explicit bounds checks (--wasm-enforce-bounds-checks): every memory access checks its bounds,
//                        as in workerd, which never installs the trap handler (its V8 setup in
//                        src/workerd/jsg/setup.c++ makes no EnableWebAssemblyTrapHandler call).
// The two split the Worker's cost over WASM-in-Node into bounds checks and the rest.
//   node [--wasm-enforce-bounds-checks] --import tsx bench/wasm-reference.ts FILE INPUT DIMS RUNS
// prints the stats of RUNS timed runs (after 100 untimed ones, past V8's tier-up) as JSON.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as ortWeb from "onnxruntime-web/wasm";
import { type Stats, referenceInput, timeRuns } from "./timing.ts";

/** The model in onnxruntime-web in a child Node process, with or without explicit bounds checks. */
export function wasmReference(
  file: string,
  input: { name: string; shape: readonly number[] },
  runs: number,
  explicitBoundsChecks: boolean,
): Stats {
  const flags = explicitBoundsChecks ? ["--wasm-enforce-bounds-checks"] : [];
  const out = execFileSync(
    process.execPath,
    [...flags, "--import", "tsx", import.meta.filename, file, input.name, JSON.stringify(input.shape), String(runs)],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  );
  return JSON.parse(out.trim().split("\n").at(-1)!) as Stats;
}

async function main([file, name, shape, runs]: string[]): Promise<void> {
  if (!file || !name || !shape || !runs) throw new Error("usage: wasm-reference.ts FILE INPUT DIMS RUNS");
  ortWeb.env.wasm.numThreads = 1;
  ortWeb.env.wasm.proxy = false;
  const session = await ortWeb.InferenceSession.create(readFileSync(file), {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const { dims, data } = referenceInput(JSON.parse(shape) as number[]);
  const input = new ortWeb.Tensor("float32", data, dims);
  const result = await timeRuns(() => session.run({ [name]: input }), 100, Number(runs));
  await session.release();
  console.log(JSON.stringify(result));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(`wasm-reference: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
