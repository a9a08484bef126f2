// npm run setup:tfjs-node's refusals: each bad input or missing prerequisite is one clear line, before
// any download or build. (The build itself runs in CI and in test/training/engine/backend-parity.test.ts.)
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cudaRequirements, nodeHeadersDir } from "../../scripts/setup-tfjs-node.ts";

function setup(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/setup-tfjs-node.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("setup-tfjs-node refuses", () => {
  it("a wheel that does not exist, or is not a wheel", () => {
    const missing = setup(["--wheel", "/nonexistent/tensorflow_cpu-2.21.0-cp311-none.whl"]);
    expect(missing.status).toBe(1);
    expect(missing.output).toMatch(/setup-tfjs-node: error: --wheel \/nonexistent\/\S+: no such file/);
    const notWheel = setup(["--wheel", "package.json"]);
    expect(notWheel.output).toMatch(/error: --wheel package.json: not a wheel \(\.whl\)/);
  });

  it("a TensorFlow version pip cannot fetch, saying what to do instead", () => {
    const r = setup(["--tensorflow", "0.0.1"]);
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/error: no TensorFlow wheel: pip could not download tensorflow-cpu==0.0.1/);
    expect(r.output).toMatch(/download the wheel elsewhere and pass --wheel FILE/);
  });

  it("a zip without TensorFlow's C library", () => {
    const dir = mkdtempSync(join(tmpdir(), "wheel-"));
    const file = join(dir, "tensorflow_cpu-0.0.1-cp311-none-any.whl");
    // An empty zip: only the end-of-central-directory record.
    writeFileSync(file, Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]));
    try {
      const r = setup(["--wheel", file]);
      expect(r.status).toBe(1);
      expect(r.output).toMatch(
        /error: tensorflow_cpu-0.0.1-cp311-none-any.whl cannot be unpacked: .*not a TensorFlow wheel with the C library: missing tensorflow\/libtensorflow_cc.so.2/s,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(".whl", "tensorflow_cpu-0.0.1-cp311-none-any.partial"), { recursive: true, force: true });
    }
  });

  it("a machine without a C++ compiler", () => {
    const r = setup([], { CXX: "/nonexistent/c++" });
    expect(r.status).toBe(1);
    expect(r.output).toMatch(/error: no C\+\+ compiler \("\/nonexistent\/c\+\+" does not run\)/);
  });

  it("options that do not go together, and unknown ones", () => {
    expect(setup(["--cuda-libs", "/tmp"]).output).toMatch(/error: --cuda-libs goes with --gpu/);
    expect(setup(["--wheeel", "x"]).output).toMatch(/error: .*--wheeel/);
  });
});

describe("nodeHeadersDir", () => {
  it("names where it looked when no folder has this Node's headers", () => {
    const empty = mkdtempSync(join(tmpdir(), "nodedir-"));
    expect(() => nodeHeadersDir([empty])).toThrow(
      new RegExp(`no Node ${process.versions.node.split(".")[0]} headers \\(node_api.h\\) in ${empty}/include/node`),
    );
  });
});

describe("cudaRequirements", () => {
  it("reads the CUDA packages a GPU wheel pins under its and-cuda extra", () => {
    const metadata = [
      "Name: tensorflow",
      "Requires-Dist: numpy>=1.26.0",
      'Requires-Dist: nvidia-cublas-cu12==12.5.3.2; extra == "and-cuda"',
      "Requires-Dist: nvidia-cudnn-cu12 == 9.3.0.75 ; extra == 'and-cuda'",
    ].join("\n");
    expect(cudaRequirements(metadata)).toEqual(["nvidia-cublas-cu12==12.5.3.2", "nvidia-cudnn-cu12==9.3.0.75"]);
  });
});
