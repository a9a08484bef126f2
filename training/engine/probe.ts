// `backend: auto` picks the engine by measurement, not by a fixed order: each installed engine
// trains the same small model for a few seconds in its own process (probe-child.ts), and the fastest
// wins. On a CPU box tfjs-node can be 2-4x slower than the wasm engine; on a GPU box the other way
// round. Results are cached per machine (machine.ts: CPU, memory, GPU, native builds), so the probe
// runs once, and the log says why the engine was chosen.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { writeJsonAtomic } from "../io/atomic.ts";
import { machineKey, nativeBuilt } from "./machine.ts";
import { PROBE_WORKLOAD, describeWorkload } from "./probe-workload.ts";

/** The backends the probe compares, with the package that provides each native one. */
const NATIVE = [
  ["node-gpu", "@tensorflow/tfjs-node-gpu"],
  ["node", "@tensorflow/tfjs-node"],
] as const;
type Probed = "node-gpu" | "node" | "wasm";

export interface ProbeResult {
  backend: Probed;
  /** Training images per second (wall clock), when the engine ran. */
  imagesPerSecond?: number;
  device?: string;
  /** Why it did not run. */
  error?: string;
}

interface ProbeCache {
  machine: string;
  workload: string;
  measuredAt: string;
  results: ProbeResult[];
}

export interface EngineChoice {
  /** Backends to try, best first; the cpu backend last. */
  order: ("node-gpu" | "node" | "wasm" | "cpu")[];
  /** One line for the log. */
  why: string;
}

const MAX_AGE_DAYS = 30;
const CHILD_TIMEOUT_MS = 180_000;

/** Where the probe's results are kept: NARROWDEEP_ENGINE_CACHE, else the user's cache folder. */
export function probeCachePath(): string {
  if (process.env.NARROWDEEP_ENGINE_CACHE) return process.env.NARROWDEEP_ENGINE_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(os.homedir(), ".cache"), "narrowdeep", "engine-probe.json");
}

/** Runs the probe of one engine in a child process. */
export function measureEngine(backend: Probed, seconds: number = PROBE_WORKLOAD.seconds): Promise<ProbeResult> {
  const child = new URL("./probe-child.mjs", import.meta.url).pathname;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [child, backend, String(seconds)],
      { timeout: CHILD_TIMEOUT_MS, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const last = stdout.trim().split("\n").at(-1) ?? "";
        try {
          const r = JSON.parse(last) as { imagesPerSecond: number; device: string };
          if (!err && r.imagesPerSecond > 0)
            return resolve({ backend, imagesPerSecond: r.imagesPerSecond, device: r.device });
        } catch {
          // Not a result line: report why below.
        }
        const lines = `${stderr}`
          .trim()
          .split("\n")
          .filter((l) => /error|not available|abort|fault|killed/i.test(l));
        const why = err?.killed
          ? `no result within ${CHILD_TIMEOUT_MS / 1000} s`
          : (lines.at(-1) ?? err?.message ?? "no result").trim();
        resolve({ backend, error: why.slice(0, 300) });
      },
    );
  });
}

function readCache(path: string): ProbeCache | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as ProbeCache;
  } catch {
    return undefined;
  }
}

const rate = (r: ProbeResult) => `${r.backend} ${Math.round(r.imagesPerSecond!)} img/s`;

/** The order and the reason, from the probe's results. */
export function rank(results: ProbeResult[], source: string): EngineChoice {
  const ran = results
    .filter((r) => r.imagesPerSecond !== undefined)
    .sort((a, b) => b.imagesPerSecond! - a.imagesPerSecond!);
  const failed = results.filter((r) => r.imagesPerSecond === undefined);
  const failures = failed.map((r) => `${r.backend} failed (${r.error})`).join("; ");
  if (ran.length === 0)
    return { order: ["wasm", "cpu"], why: `auto: no engine finished the probe (${failures}); trying wasm` };
  const [best, ...rest] = ran;
  const against = rest.length > 0 ? ` against ${rest.map(rate).join(", ")}` : "";
  return {
    order: [...ran.map((r) => r.backend), ...(ran.some((r) => r.backend === "wasm") ? [] : (["wasm"] as const)), "cpu"],
    why: `auto chose ${best!.backend}: ${rate(best!).slice(best!.backend.length + 1)}${against}${failures ? `; ${failures}` : ""} (${source})`,
  };
}

export interface ChooseOptions {
  /** Where the results are cached; default probeCachePath(). */
  cachePath?: string;
  /** Measures one engine; default measureEngine (a child process). */
  measure?: (backend: Probed) => Promise<ProbeResult>;
  /** Progress lines while measuring. */
  log?: (line: string) => void;
  now?: Date;
}

/** Which engine `auto` runs on this machine: the only one installed, or the fastest by the (cached) probe. */
export async function chooseEngine({
  cachePath = probeCachePath(),
  measure = measureEngine,
  log = () => {},
  now = new Date(),
}: ChooseOptions = {}): Promise<EngineChoice> {
  const installed = NATIVE.filter(([, pkg]) => nativeBuilt(pkg));
  if (installed.length === 0)
    return {
      order: ["wasm", "cpu"],
      why: "auto: wasm, the only engine installed (tfjs-node and tfjs-node-gpu are not built; npm run setup:tfjs-node builds them)",
    };

  const machine = machineKey(NATIVE.map(([, pkg]) => pkg));
  const workload = describeWorkload();
  const cached = readCache(cachePath);
  const fresh =
    cached &&
    cached.machine === machine &&
    cached.workload === workload &&
    now.getTime() - Date.parse(cached.measuredAt) < MAX_AGE_DAYS * 86_400_000;
  if (fresh)
    return rank(
      cached.results,
      `probe of ${cached.measuredAt.slice(0, 16)}Z cached in ${cachePath}; delete it to measure again`,
    );

  const engines: Probed[] = [...installed.map(([backend]) => backend), "wasm"];
  log(`engine: auto: measuring ${engines.join(", ")} on this machine (${workload} each; once, then cached)`);
  const results: ProbeResult[] = [];
  for (const backend of engines) results.push(await measure(backend)); // one at a time: they would slow each other
  const entry: ProbeCache = { machine, workload, measuredAt: now.toISOString(), results };
  try {
    writeJsonAtomic(cachePath, entry);
  } catch (err) {
    log(`engine: auto: could not cache the probe in ${cachePath} (${(err as Error).message}); it runs again next time`);
  }
  return rank(results, `probe: ${workload}, cached in ${cachePath}`);
}
