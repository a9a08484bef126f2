// What identifies this machine for the engine probe's cache: its CPU, memory, GPU and the native
// engines installed (a rebuilt binding is another engine), so a cached choice never outlives them.
import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** The first NVIDIA GPU's name, if nvidia-smi answers. */
export function gpuName(): string | undefined {
  try {
    const out = execFileSync("nvidia-smi", ["--query-gpu=name", "--format=csv,noheader"], {
      encoding: "utf8",
      timeout: 5000,
      stdio: ["ignore", "pipe", "ignore"],
    });
    return out.trim().split("\n")[0] || undefined;
  } catch {
    return undefined;
  }
}

/** The package's folder if it is installed (resolvable from the engine), else undefined. */
export function packageDir(pkg: string): string | undefined {
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return undefined;
  }
}

/** Whether a tfjs-node package is installed with its native binding built (npm may install one unbuilt). */
export function nativeBuilt(pkg: string): boolean {
  const dir = packageDir(pkg);
  if (!dir) return false;
  try {
    return readdirSync(join(dir, "lib")).some(
      (napi) => statSync(join(dir, "lib", napi, "tfjs_binding.node"), { throwIfNoEntry: false }) !== undefined,
    );
  } catch {
    return false;
  }
}

/** "<version> <binding size>@<mtime>" of an installed tfjs-node package: changes when it is rebuilt. */
function nativeBuild(dir: string): string {
  const version = (require(join(dir, "package.json")) as { version: string }).version;
  const builds: string[] = [];
  try {
    for (const napi of readdirSync(join(dir, "lib"))) {
      const s = statSync(join(dir, "lib", napi, "tfjs_binding.node"), { throwIfNoEntry: false });
      if (s) builds.push(`${napi}:${s.size}@${Math.round(s.mtimeMs)}`);
    }
  } catch {
    // No lib/: not built (it will fail to load, and the probe says so).
  }
  return `${version} ${builds.join(",") || "unbuilt"}`;
}

/** A stable description of the machine and its installed native engines, by package name. */
export function machineKey(packages: readonly string[]): string {
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  const parts = [
    `${os.hostname()}`,
    `${cpu} x${os.availableParallelism()}`,
    `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    `GPU ${gpuName() ?? "none"}`,
    `Node ${process.versions.node}`,
  ];
  for (const pkg of packages) {
    const dir = packageDir(pkg);
    parts.push(`${pkg} ${dir ? nativeBuild(dir) : "absent"}`);
  }
  return parts.join("; ");
}
