#!/usr/bin/env bash
# scripts/gpu-check.sh: one prepared run for a machine with an NVIDIA GPU. It
#   1. installs the GPU engine: npm run setup:tfjs-node -- --gpu (tfjs-node-gpu against the GPU-enabled
#      TensorFlow wheel and the CUDA libraries its metadata names);
#   2. runs the gradient-parity test (test/training/engine/backend-parity.test.ts) on that engine,
#      with TF32 off (NVIDIA_TF32_OVERRIDE=0: TF32 convolutions differ from float32 by far more than 1e-4);
#   3. benchmarks a teacher epoch (cross-entropy) and a KD student epoch (narrow-deep, teacher
#      uncached) with npm run bench:train on that engine and on the WASM engine, and the same steps in
#      PyTorch where `python3 -c "import torch"` works;
#   4. serves the shipped teacher with the teacher host on onnxruntime-node's CUDA provider and drives
#      it at concurrency 1, 8 and 32 (autocannon, Open Inference Protocol requests);
#   5. writes every result into one JSON file (default .bench/gpu-check.json).
# --dry runs the same steps on the CPU (tfjs-node instead of tfjs-node-gpu, the CPU provider, short
# windows): it checks the script end to end on a machine without a GPU. Its numbers are not GPU numbers.
#
#   scripts/gpu-check.sh [--dry] [--out FILE] [--seconds N] [--wheel FILE] [--cuda-libs DIR]
#
# --wheel and --cuda-libs go to setup:tfjs-node, for a GPU machine without pip access (see docs/training.md).
# PYTHON names the Python with torch (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

dry=0
out=.bench/gpu-check.json
seconds=""
setup_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) dry=1 ;;
    --out) out="${2:?--out needs a file}"; shift ;;
    --seconds) seconds="${2:?--seconds needs a number}"; shift ;;
    --wheel | --cuda-libs) setup_args+=("$1" "${2:?$1 needs a path}"); shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$dry" = 1 ]; then
  engine=node; package=@tensorflow/tfjs-node; provider=cpu; seconds="${seconds:-2}"; repeats=1; epoch_images=2000
else
  engine=node-gpu; package=@tensorflow/tfjs-node-gpu; provider=cuda; seconds="${seconds:-10}"; repeats=3; epoch_images=55000
  setup_args=(--gpu "${setup_args[@]}")
  command -v nvidia-smi >/dev/null || { echo "gpu-check: no nvidia-smi: this is not a GPU machine (use --dry to check the script on a CPU)" >&2; exit 1; }
fi
python="${PYTHON:-python3}"
work="$(mktemp -d)"
say() { echo "gpu-check: $*"; }
# Each step records {"ok": bool, ...} in $work/<step>.json; a failed step does not stop the others.
record() { printf '%s\n' "$2" >"$work/$1.json"; }

say "mode: $([ "$dry" = 1 ] && echo "dry (CPU)" || echo GPU); results in $out; work files in $work"
gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1 || true)"
record device "$(node -e 'console.log(JSON.stringify({ gpu: process.argv[1] || null, cpu: require("os").cpus()[0].model, cores: require("os").availableParallelism(), node: process.version }))' "$gpu")"

say "1/5 installing the engine: npm run setup:tfjs-node -- ${setup_args[*]:-}"
if npm run --silent setup:tfjs-node -- "${setup_args[@]}" 2>&1 | tee "$work/setup.log"; then
  record setup "$(node -e 'console.log(JSON.stringify({ ok: true, log: process.argv[1] }))' "$(grep 'setup-tfjs-node:' "$work/setup.log" | tail -n 1)")"
else
  record setup "$(node -e 'console.log(JSON.stringify({ ok: false, log: process.argv[1] }))' "$(tail -n 5 "$work/setup.log")")"
fi
# The CUDA libraries' search path, as setup:tfjs-node wrote it (GPU mode only).
env_file="$(ls -t .whl/*/cuda-env.sh 2>/dev/null | head -n 1 || true)"
if [ "$dry" = 0 ] && [ -n "$env_file" ]; then
  # shellcheck disable=SC1090
  source "$env_file"
  say "LD_LIBRARY_PATH from $env_file"
fi

say "2/5 gradient parity on $package"
if NARROWDEEP_NATIVE_PACKAGE="$package" NVIDIA_TF32_OVERRIDE=0 npx vitest run --config vitest.node.config.mts test/training/engine/backend-parity.test.ts \
  --reporter=default --reporter=json --outputFile.json="$work/parity-vitest.json" 2>&1 | tee "$work/parity.log"; then parity_ok=true; else parity_ok=false; fi
record parity "$(node -e '
  const fs = require("fs");
  const [ok, file, log] = process.argv.slice(1);
  const r = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : {};
  const lines = fs.readFileSync(log, "utf8").split("\n");
  console.log(JSON.stringify({ ok: ok === "true", passed: r.numPassedTests ?? null, failed: r.numFailedTests ?? null, skipped: r.numPendingTests ?? null,
    worst: lines.filter((l) => /worst relative error/.test(l)).map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").trim()),
    notTested: lines.find((l) => /NOT TESTED/.test(l)) ?? null }));' "$parity_ok" "$work/parity-vitest.json" "$work/parity.log")"

say "3/5 training benchmark: $engine against the WASM engine (wasm-dp)"
if npm run --silent bench:train -- --presets full --models teacher,narrow-deep --engines "$engine,wasm-dp" --batches 128 --inputs 28x28x1 --kd \
  --seconds "$seconds" --repeats "$repeats" --out "$work/bench" 2>&1 | tee "$work/bench.log"; then bench_ok=true; else bench_ok=false; fi
record bench "$(node -e '
  const fs = require("fs");
  const [ok, file, images] = process.argv.slice(1);
  const r = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, "utf8")) : { results: [], unavailable: {} };
  // An epoch of the full preset: the teacher trains with cross-entropy, a KD student waits for its teacher.
  const epochs = r.results.map((m) => ({ engine: m.engine, device: m.device, model: m.model, batch: m.batch,
    trainImagesPerSecond: m.trainImagesPerSecond, kdTrainImagesPerSecond: m.kdTrainImagesPerSecond ?? null,
    epochSeconds: Math.round(Number(images) / (m.model === "teacher" ? m.trainImagesPerSecond : (m.kdTrainImagesPerSecond ?? m.trainImagesPerSecond))) }));
  console.log(JSON.stringify({ ok: ok === "true", epochImages: Number(images), epochs, unavailable: r.unavailable }));' "$bench_ok" "$work/bench/train.json" "$epoch_images")"

say "3/5 the same steps in PyTorch ($python)"
if "$python" -c "import torch" 2>/dev/null; then
  if "$python" - "$seconds" "$epoch_images" >"$work/torch.out" 2>"$work/torch.log" <<'PY'
# The project's ResNet family in PyTorch (CIFAR-style 3x3 stem, basic blocks, projection shortcuts where
# the shape changes; widths and blocks as training/model/resnet.ts), one SGD step with Nesterov momentum
# at batch 128 on 28x28x1: the teacher with cross-entropy, narrow-deep with KD (T=4, alpha=0.9) from
# the teacher in eval mode on the same batch.
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

seconds, epoch_images = float(sys.argv[1]), int(sys.argv[2])
device = "cuda" if torch.cuda.is_available() else "cpu"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

def conv_bn(cin, cout, stride, k=3):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False), nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a, self.b = conv_bn(cin, cout, stride), conv_bn(cout, cout, 1)
        self.shortcut = conv_bn(cin, cout, stride, 1) if stride != 1 or cin != cout else nn.Identity()
    def forward(self, x):
        return F.relu(self.b(F.relu(self.a(x))) + self.shortcut(x))

def resnet(w, blocks, classes=10):
    layers, cin = [conv_bn(1, w, 1), nn.ReLU()], w
    for s, (width, n) in enumerate(zip([w, 2 * w, 4 * w], blocks)):
        for b in range(n):
            layers.append(Block(cin, width, 2 if s > 0 and b == 0 else 1)); cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))

def rate(step):
    step(); step()
    if device == "cuda": torch.cuda.synchronize()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        step(); n += 1
    if device == "cuda": torch.cuda.synchronize()
    return n * 128 / (time.perf_counter() - start)

x = torch.randn(128, 1, 28, 28, device=device)
y = torch.randint(0, 10, (128,), device=device)
teacher, student = resnet(32, [2, 2, 2]).to(device), resnet(8, [4, 5, 4]).to(device)
opt_t = torch.optim.SGD(teacher.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
opt_s = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)

def teacher_step():
    opt_t.zero_grad(); F.cross_entropy(teacher(x), y).backward(); opt_t.step()

def kd_step():
    with torch.no_grad():
        t = teacher.eval()(x)
    teacher.train()
    s = student(x)
    soft = F.kl_div(F.log_softmax(s / 4, 1), F.log_softmax(t / 4, 1), reduction="batchmean", log_target=True) * 16
    loss = 0.9 * soft + 0.1 * F.cross_entropy(s, y)
    opt_s.zero_grad(); loss.backward(); opt_s.step()

teacher.train(); student.train()
t_rate, kd_rate = rate(teacher_step), rate(kd_step)
print(json.dumps({"ok": True, "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                  "threads": torch.get_num_threads(), "teacherImagesPerSecond": t_rate, "kdStudentImagesPerSecond": kd_rate,
                  "teacherEpochSeconds": round(epoch_images / t_rate), "kdStudentEpochSeconds": round(epoch_images / kd_rate)}))
PY
  then record torch "$(tail -n 1 "$work/torch.out")"; else record torch "$(node -e 'console.log(JSON.stringify({ ok: false, error: process.argv[1] }))' "$(tail -n 3 "$work/torch.log")")"; fi
else
  record torch '{"ok": false, "error": "torch is not installed for this python (PYTHON=...)"}'
fi
cat "$work/torch.json"; echo

say "4/5 teacher host on onnxruntime-node's $provider provider at c=1/8/32"
token="$(node -e 'console.log(require("crypto").randomBytes(32).toString("base64url"))')"
port=$((20000 + RANDOM % 20000))
TEACHER_TOKEN="$token" node --import tsx teacher/main.ts --manifest models/manifest.json --host 127.0.0.1 --port "$port" --provider "$provider" >"$work/host.log" 2>&1 &
host_pid=$!
trap 'kill "$host_pid" 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  curl -fsS "$url/v2/health/ready" >/dev/null 2>&1 && break
  kill -0 "$host_pid" 2>/dev/null || { say "the teacher host exited: $(tail -n 2 "$work/host.log")"; break; }
  sleep 1
done
body="$(node -e '
  const m = require("./models/manifest.json").models.find((x) => x.role === "teacher");
  const shape = m.input.shape.map((d) => (d < 0 ? 1 : d));
  const size = shape.reduce((a, b) => a * b, 1);
  console.log(JSON.stringify({ inputs: [{ name: m.input.name, shape, datatype: "FP32", data: Array.from({ length: size }, (_, i) => Math.sin(i) * 0.5) }] }));')"
teacher_name="$(node -e 'console.log(require("./models/manifest.json").models.find((x) => x.role === "teacher").name)')"
host_ok=true
for c in 1 8 32; do
  if ! npx autocannon -c "$c" -d "$seconds" -m POST -H "authorization=Bearer $token" -H "content-type=application/json" -b "$body" --json \
    "$url/v2/models/$teacher_name/infer" >"$work/host-c$c.json" 2>"$work/host-c$c.log"; then host_ok=false; fi
done
kill "$host_pid" 2>/dev/null || true
record host "$(node -e '
  const fs = require("fs");
  const [ok, dir, provider, hostLog] = process.argv.slice(1);
  const levels = [1, 8, 32].map((c) => {
    const f = `${dir}/host-c${c}.json`;
    if (!fs.existsSync(f) || fs.statSync(f).size === 0) return { concurrency: c, error: "no result" };
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    return { concurrency: c, requestsPerSecond: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
  });
  const started = fs.readFileSync(hostLog, "utf8").split("\n").filter((l) => /listening|cuda|cpu|unavailable|error/i.test(l)).slice(0, 5);
  console.log(JSON.stringify({ ok: ok === "true" && levels.every((l) => !l.error && l.non2xx === 0 && l.errors === 0 && l.requestsPerSecond > 0), provider, levels, host: started }));' "$host_ok" "$work" "$provider" "$work/host.log")"

say "5/5 writing $out"
mkdir -p "$(dirname "$out")"
node -e '
  const fs = require("fs");
  const [dir, out, dry] = process.argv.slice(1);
  const read = (n) => { try { return JSON.parse(fs.readFileSync(`${dir}/${n}.json`, "utf8")); } catch (e) { return { ok: false, error: `step produced no result (${e.message})` }; } };
  const report = { date: new Date().toISOString(), mode: dry === "1" ? "dry (CPU, not GPU numbers)" : "gpu",
    device: read("device"), setup: read("setup"), parity: read("parity"), bench: read("bench"), torch: read("torch"), host: read("host") };
  fs.writeFileSync(`${out}.tmp`, JSON.stringify(report, null, 2) + "\n");
  fs.renameSync(`${out}.tmp`, out);
  const steps = ["setup", "parity", "bench", "torch", "host"].map((s) => `${s} ${report[s].ok ? "ok" : "FAILED"}`);
  console.log(`gpu-check: ${steps.join(", ")}`);' "$work" "$out" "$dry"
