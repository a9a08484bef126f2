// The reference validator: onnx.checker.check_model(full_check=True) from Debian's python3-onnx, run on
// the system Python (/usr/bin/python3; other Pythons on PATH may lack the onnx module).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SYSTEM_PYTHON = "/usr/bin/python3";

const SCRIPT = `
import sys
try:
    import onnx
except ImportError:
    print("unavailable"); sys.exit(3)
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
print("onnx %s, full_check, opset %d" % (onnx.__version__, m.opset_import[0].version))
`;

export type CheckerResult =
  | { status: "passed"; detail: string }
  | { status: "failed"; detail: string }
  | { status: "unavailable"; detail: string };

/** Runs onnx.checker on ONNX bytes. "unavailable" when the system Python or its onnx module is missing. */
export function runOnnxChecker(onnx: Uint8Array, python = SYSTEM_PYTHON): CheckerResult {
  const dir = mkdtempSync(join(tmpdir(), "onnx-check-"));
  try {
    const file = join(dir, "model.onnx");
    writeFileSync(file, onnx);
    const r = spawnSync(python, ["-c", SCRIPT, file], { encoding: "utf8", timeout: 120_000 });
    if (r.error) return { status: "unavailable", detail: `${python}: ${r.error.message}` };
    if (r.status === 3)
      return { status: "unavailable", detail: `${python} has no onnx module (apt-get install python3-onnx)` };
    if (r.status === 0) return { status: "passed", detail: r.stdout.trim() };
    const lines = (r.stderr || r.stdout).trim().split("\n");
    return { status: "failed", detail: lines.slice(-3).join(" ") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
