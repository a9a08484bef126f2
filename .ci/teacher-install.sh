#!/usr/bin/env bash
# CI: the teacher host runs from a production install. A clean clone of the repository (what is
# committed) in a temporary folder, `npm ci --omit=dev` there, then the documented command
# (`npm run teacher`) on the shipped models, until GET /v2/health/ready answers 200.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
teacher_pid=""
cleanup() {
  # npm, tsx and node: the host runs in a process group of its own, stopped whole.
  # (Before setsid has run, the group does not exist yet: then the process itself.)
  if [ -n "$teacher_pid" ]; then kill -- "-$teacher_pid" 2>/dev/null || kill "$teacher_pid" 2>/dev/null || true; wait "$teacher_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

git clone --quiet --local "$src" "$work/repo"
cd "$work/repo"
# No CUDA download (onnxruntime-node's install script) and no Debian packages (only the tests need them).
ONNXRUNTIME_NODE_INSTALL=skip NARROWDEEP_SKIP_APT=1 npm ci --omit=dev --no-audit --no-fund --loglevel=error
if [ -e node_modules/vitest ] || [ -e node_modules/typescript ]; then
  echo "teacher-install: npm ci --omit=dev installed devDependencies" >&2
  exit 1
fi

: >"$work/teacher.log"
TEACHER_TOKEN="$(node -e 'console.log(require("node:crypto").randomBytes(32).toString("base64url"))')" \
  setsid npm run --silent teacher -- --port 0 >"$work/teacher.log" 2>&1 &
teacher_pid=$!
for _ in $(seq 1 120); do
  url="$(sed -n 's/^teacher: listening on \(http:\/\/[^ ]*\)$/\1/p' "$work/teacher.log" || true)"
  if [ -n "$url" ] && node -e 'fetch(process.argv[1]).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' "$url/v2/health/ready"; then
    echo "teacher-install: npm ci --omit=dev, then npm run teacher: $url/v2/health/ready answered 200"
    exit 0
  fi
  if ! kill -0 "$teacher_pid" 2>/dev/null; then break; fi
  sleep 0.5
done
echo "teacher-install: the teacher host did not become ready; its log:" >&2
cat "$work/teacher.log" >&2
exit 1
