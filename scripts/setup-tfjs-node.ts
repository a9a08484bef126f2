// `npm run setup:tfjs-node`: builds tfjs-node's native binding against the TensorFlow libraries inside
// a TensorFlow Python wheel, instead of the libtensorflow 2.9.1 its install script downloads (which
// air-gapped machines cannot reach, and which current CUDA drivers cannot drive). Steps, each skipped
// when already done: fetch the wheel (pip) or take the one given; unpack its C headers and two shared
// libraries into .whl/; install the npm package without its install script; point the package's deps/
// at the wheel's files; compile the binding (node-gyp, through the package's own install script);
// load it and check the TensorFlow version it reports. With --gpu the same for tfjs-node-gpu, the
// GPU-enabled `tensorflow` wheel and the CUDA libraries its metadata names (see docs/training.md).
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const WHEELS = join(ROOT, ".whl");
const DEFAULT_TF = "2.21.0";
const HELP = `usage: npm run setup:tfjs-node -- [--gpu] [--wheel FILE] [--cuda-libs DIR] [--tensorflow VERSION] [--force]

  --gpu              @tensorflow/tfjs-node-gpu with the GPU-enabled "tensorflow" wheel and its CUDA libraries
  --wheel FILE       a TensorFlow wheel you downloaded (tensorflow-cpu, or tensorflow with --gpu); default: pip download
  --cuda-libs DIR    with --gpu: a folder holding the CUDA libraries (e.g. site-packages with nvidia/*/lib); default: pip
  --tensorflow V     the TensorFlow version pip fetches (default ${DEFAULT_TF})
  --force            rebuild even when the binding already reports the wheel's TensorFlow version`;

class SetupError extends Error {}

function say(line: string): void {
  console.log(`setup-tfjs-node: ${line}`);
}

/** Runs a command; returns its output, or throws SetupError with `what` and the output's last lines. */
function run(cmd: string, args: string[], what: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: "utf8", maxBuffer: 64 << 20 });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (r.error || r.status !== 0) {
    const tail = output.trim().split("\n").slice(-8).join("\n  ");
    throw new SetupError(
      `${what}: ${r.error ? r.error.message : `${cmd} exited with ${r.status}`}${tail ? `\n  ${tail}` : ""}`,
    );
  }
  return output;
}

function has(cmd: string, args = ["--version"]): boolean {
  return spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
}

/** A C++ compiler, make and python3 (node-gyp's needs). */
function checkToolchain(): void {
  const cxx = process.env.CXX ?? "c++";
  if (!has(cxx))
    throw new SetupError(
      `no C++ compiler ("${cxx}" does not run): install one (Debian: apt-get install g++ make) or set CXX`,
    );
  if (!has("make")) throw new SetupError("no make: install it (Debian: apt-get install make)");
  if (!has("python3")) throw new SetupError("no python3: node-gyp needs it (Debian: apt-get install python3)");
}

/** The folder whose include/node holds this Node's headers (node-gyp's nodedir; it cannot download them offline). */
export function nodeHeadersDir(candidates: string[]): string {
  const major = process.versions.node.split(".")[0];
  for (const dir of candidates) {
    const version = join(dir, "include", "node", "node_version.h");
    if (!existsSync(join(dir, "include", "node", "node_api.h")) || !existsSync(version)) continue;
    const found = /#define NODE_MAJOR_VERSION (\d+)/.exec(readFileSync(version, "utf8"))?.[1];
    if (found === major) return dir;
    say(`skipping Node headers in ${dir}: they are for Node ${found}, this is Node ${major}`);
  }
  throw new SetupError(
    `no Node ${major} headers (node_api.h) in ${candidates.map((d) => join(d, "include", "node")).join(", ")}: install them (Debian: apt-get install libnode-dev, or Node's own tarball) or set npm_config_nodedir`,
  );
}

interface Wheel {
  file: string;
  version: string;
  /** Where its headers and libraries are unpacked. */
  dir: string;
}

/** The wheel given, or the one pip downloads into .whl/ (reused when already there). */
function obtainWheel(given: string | undefined, gpu: boolean, version: string): string {
  if (given) {
    const file = resolve(given);
    if (!existsSync(file)) throw new SetupError(`--wheel ${given}: no such file`);
    if (!file.endsWith(".whl")) throw new SetupError(`--wheel ${given}: not a wheel (.whl)`);
    return file;
  }
  const project = gpu ? "tensorflow" : "tensorflow-cpu";
  const prefix = `${project.replace("-", "_")}-${version}-`;
  const present = existsSync(WHEELS)
    ? readdirSync(WHEELS).find((f) => f.startsWith(prefix) && f.endsWith(".whl"))
    : undefined;
  if (present) return join(WHEELS, present);
  if (!has("pip", ["--version"]))
    throw new SetupError(
      `no TensorFlow wheel: pip is not installed; download ${project}==${version} elsewhere and pass --wheel FILE`,
    );
  say(`downloading ${project}==${version} with pip into .whl/`);
  mkdirSync(WHEELS, { recursive: true });
  try {
    run(
      "pip",
      ["download", "--no-deps", "--retries", "0", "--timeout", "10", "-d", WHEELS, `${project}==${version}`],
      `no TensorFlow wheel: pip could not download ${project}==${version}`,
    );
  } catch (err) {
    throw new SetupError(`${(err as Error).message}\n  download the wheel elsewhere and pass --wheel FILE`);
  }
  const got = readdirSync(WHEELS).find((f) => f.startsWith(prefix) && f.endsWith(".whl"));
  if (!got) throw new SetupError(`pip reported success but no ${prefix}*.whl is in .whl/`);
  return join(WHEELS, got);
}

const UNPACK = `
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(wheel)
names = z.namelist()
libs = ["tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"]
missing = [n for n in libs if n not in names]
if missing:
    sys.exit("not a TensorFlow wheel with the C library: missing " + ", ".join(missing))
for n in names:
    if n in libs or n.startswith("tensorflow/include/") or (".dist-info/" in n and n.endswith("METADATA")):
        z.extract(n, dest)
`;

/** Unpacks the wheel's headers, libraries and metadata into .whl/<wheel name>/ (atomically: a partial unpack never counts). */
function unpackWheel(file: string): Wheel {
  const name = basename(file, ".whl");
  const version = name.split("-")[1] ?? "";
  if (!/^\d+\.\d+/.test(version))
    throw new SetupError(`${basename(file)}: cannot read a version from the wheel's name`);
  const dir = join(WHEELS, name);
  if (!existsSync(join(dir, "tensorflow", "libtensorflow_cc.so.2"))) {
    say(`unpacking headers and libraries of ${basename(file)} into .whl/${name}/`);
    const partial = `${dir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true });
    run("python3", ["-c", UNPACK, file, partial], `${basename(file)} cannot be unpacked`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  }
  return { file, version, dir };
}

/** The CUDA packages the GPU wheel's metadata asks for (extra "and-cuda"), pinned as it pins them. */
export function cudaRequirements(metadata: string): string[] {
  return metadata
    .split("\n")
    .filter((l) => l.startsWith("Requires-Dist:") && /extra\s*==\s*["']and-cuda["']/.test(l))
    .map((l) => l.slice("Requires-Dist:".length).split(";")[0]!.replace(/\s+/g, ""));
}

/** Every lib folder of the CUDA packages under `root` (pip's nvidia/<part>/lib layout), for LD_LIBRARY_PATH. */
function cudaLibraryDirs(root: string): string[] {
  const nvidia = existsSync(join(root, "nvidia")) ? join(root, "nvidia") : root;
  return readdirSync(nvidia)
    .map((part) => join(nvidia, part, "lib"))
    .filter((dir) => existsSync(dir));
}

/** The CUDA libraries for the GPU wheel: the folder given, or pip installs them into .whl/<wheel>-cuda/. */
function obtainCudaLibraries(wheel: Wheel, given: string | undefined): string[] {
  const root = given ? resolve(given) : `${wheel.dir}-cuda`;
  if (given && !existsSync(root)) throw new SetupError(`--cuda-libs ${given}: no such folder`);
  if (!given && !existsSync(root)) {
    const info = readdirSync(wheel.dir).find((d) => d.endsWith(".dist-info"));
    const reqs = info ? cudaRequirements(readFileSync(join(wheel.dir, info, "METADATA"), "utf8")) : [];
    if (reqs.length === 0)
      throw new SetupError(
        `${basename(wheel.file)} names no CUDA libraries (extra "and-cuda"): is it the GPU-enabled "tensorflow" wheel?`,
      );
    say(`installing the CUDA libraries it names with pip into ${root}: ${reqs.join(" ")}`);
    run(
      "pip",
      ["install", "--no-deps", "--retries", "0", "--timeout", "10", "--target", `${root}.partial`, ...reqs],
      "the CUDA libraries could not be installed (pass --cuda-libs DIR where you have them)",
    );
    renameSync(`${root}.partial`, root);
  }
  const dirs = cudaLibraryDirs(root);
  if (dirs.length === 0) throw new SetupError(`no CUDA libraries in ${root} (expected nvidia/<part>/lib folders)`);
  return dirs;
}

/** The npm package, installed without its install script (which would download libtensorflow 2.9.1). */
function installPackage(pkg: string): string {
  const wanted = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).optionalDependencies?.[pkg] as
    | string
    | undefined;
  if (!wanted) throw new SetupError(`package.json does not list ${pkg} under optionalDependencies`);
  const dir = join(ROOT, "node_modules", ...pkg.split("/"));
  const installed = existsSync(join(dir, "package.json"))
    ? (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version as string)
    : undefined;
  if (installed === wanted) return dir;
  say(`installing ${pkg}@${wanted} from the npm registry without its install script`);
  run(
    "npm",
    ["install", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", `${pkg}@${wanted}`],
    `npm could not install ${pkg}@${wanted}`,
  );
  return dir;
}

function link(target: string, path: string): void {
  rmSync(path, { recursive: true, force: true });
  symlinkSync(target, path);
}

/**
 * Points the package's deps/ at the wheel, as its install script expects libtensorflow there:
 * include/ (headers), the two libraries under the names the build links (-ltensorflow,
 * -ltensorflow_framework) and the 2.9.1 name its install script checks, and a custom-binary.json
 * (tfjs-node's documented hook for custom libtensorflow builds) that makes it compile from source.
 */
function stageDeps(dir: string, wheel: Wheel): void {
  const tf = join(wheel.dir, "tensorflow");
  const lib = join(dir, "deps", "lib");
  mkdirSync(lib, { recursive: true });
  link(join(tf, "include"), join(dir, "deps", "include"));
  for (const [name, target] of [
    ["libtensorflow_cc.so.2", "libtensorflow_cc.so.2"],
    ["libtensorflow_framework.so.2", "libtensorflow_framework.so.2"],
    ["libtensorflow.so", "libtensorflow_cc.so.2"],
    ["libtensorflow_framework.so", "libtensorflow_framework.so.2"],
    ["libtensorflow.so.2.9.1", "libtensorflow_cc.so.2"],
  ] as const) {
    link(join(tf, target), join(lib, name));
  }
  writeFileSync(
    join(dir, "scripts", "custom-binary.json"),
    `${JSON.stringify({ "tf-lib": `file://${wheel.file}` })}\n`,
  );
}

/** Loads the package in a fresh Node and returns the TensorFlow version its binding reports (and whether it found a GPU). */
function probe(pkg: string, env: NodeJS.ProcessEnv): { version: string; gpu: boolean } | undefined {
  const code = `const tf = require(${JSON.stringify(pkg)}); const b = tf.backend(); console.log(JSON.stringify({ version: b.binding.TF_Version, gpu: !!b.isUsingGpuDevice }));`;
  const r = spawnSync(process.execPath, ["-e", code], {
    cwd: ROOT,
    env: { ...env, TF_CPP_MIN_LOG_LEVEL: "2" },
    encoding: "utf8",
  });
  if (r.status !== 0) return undefined;
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(last) as { version: string; gpu: boolean };
  } catch {
    return undefined;
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      gpu: { type: "boolean" },
      wheel: { type: "string" },
      "cuda-libs": { type: "string" },
      tensorflow: { type: "string" },
      force: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: false,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const gpu = values.gpu === true;
  if (values["cuda-libs"] && !gpu) throw new SetupError("--cuda-libs goes with --gpu");
  if (process.platform !== "linux" || process.arch !== "x64")
    throw new SetupError(
      `supports Linux x86-64 only (the TensorFlow wheels' C library), not ${process.platform}-${process.arch}`,
    );
  const pkg = gpu ? "@tensorflow/tfjs-node-gpu" : "@tensorflow/tfjs-node";

  // The build's needs first, before minutes of downloads.
  checkToolchain();
  const nodedir = nodeHeadersDir(
    [process.env.npm_config_nodedir, resolve(process.execPath, "..", ".."), "/usr", "/usr/local"].filter(
      (d): d is string => !!d,
    ),
  );
  const wheel = unpackWheel(obtainWheel(values.wheel, gpu, values.tensorflow ?? DEFAULT_TF));
  const cudaDirs = gpu ? obtainCudaLibraries(wheel, values["cuda-libs"]) : [];
  const env =
    cudaDirs.length > 0
      ? { ...process.env, LD_LIBRARY_PATH: [...cudaDirs, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":") }
      : process.env;
  if (cudaDirs.length > 0) {
    const envFile = join(wheel.dir, "cuda-env.sh");
    writeFileSync(
      envFile,
      `# Source before training with --backend node-gpu: libtensorflow finds the CUDA libraries here.\nexport LD_LIBRARY_PATH=${cudaDirs.join(":")}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n`,
    );
    say(`CUDA libraries: ${cudaDirs.length} folders; before training run: source ${envFile}`);
  }

  const dir = join(ROOT, "node_modules", ...pkg.split("/"));
  const before = existsSync(join(dir, "package.json")) ? probe(pkg, env) : undefined;
  if (before?.version === wheel.version && !values.force) {
    say(
      `${pkg} already runs TensorFlow ${before.version} from ${basename(wheel.file)}${before.gpu ? " on a GPU" : ""}; nothing to do (--force rebuilds)`,
    );
    return;
  }

  installPackage(pkg);
  stageDeps(dir, wheel);
  say(`compiling ${pkg}'s binding against TensorFlow ${wheel.version} (Node headers from ${nodedir}/include/node)`);
  rmSync(join(dir, "lib"), { recursive: true, force: true });
  run("npm", ["rebuild", pkg], `compiling ${pkg}'s binding failed`, {
    ...process.env,
    npm_config_nodedir: nodedir,
    JOBS: String(Math.min(8, os.availableParallelism())),
  });

  const after = probe(pkg, env);
  if (!after) throw new SetupError(`${pkg} was built but does not load (run: node -e 'require("${pkg}")' to see why)`);
  if (after.version !== wheel.version)
    throw new SetupError(`${pkg} loads TensorFlow ${after.version}, not the wheel's ${wheel.version}`);
  say(
    `done: ${pkg} runs TensorFlow ${after.version}${gpu ? (after.gpu ? " and sees a CUDA GPU" : " but sees no CUDA GPU (no GPU here, or LD_LIBRARY_PATH lacks the CUDA libraries)") : ""}; train with --backend ${gpu ? "node-gpu" : "node"}`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    main();
  } catch (err) {
    const parse = String((err as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS");
    if (!(err instanceof SetupError) && !parse) throw err;
    console.error(`setup-tfjs-node: error: ${(err as Error).message}`);
    process.exit(1);
  }
}
