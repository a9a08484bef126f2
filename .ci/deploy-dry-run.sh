#!/usr/bin/env bash
# CI: each deployment environment of wrangler.toml (staging, production) builds and bundles as
# `wrangler deploy --env <env>` would upload it, offline (`--dry-run`, into a temporary folder, so
# nothing is left in the tree). Before that, the environments are checked against the top level,
# since wrangler inherits no vars or bindings into an environment: each must declare every top-level
# var and bind every top-level binding name, and the two must share no resource (D1 database, queue,
# bucket, rate-limiter namespace). A wrangler warning that a top-level field is missing from an
# environment fails too. docs/deploy.md is the operator's side of this.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false CI=1 NO_COLOR=1
envs=(staging production)

node --input-type=module - "${envs[@]}" <<'EOF'
import { unstable_readConfig } from "wrangler";
const names = process.argv.slice(2);
const silence = console.warn; // wrangler's config warnings come again below, from the dry runs
console.warn = () => {};
const top = unstable_readConfig({ config: "wrangler.toml" });
const envs = Object.fromEntries(names.map((env) => [env, unstable_readConfig({ config: "wrangler.toml", env })]));
console.warn = silence;
const bindingNames = (c) => [
  ...c.d1_databases.map((b) => `d1 ${b.binding}`),
  ...(c.queues.producers ?? []).map((b) => `queue producer ${b.binding}`),
  ...(c.queues.consumers ?? []).map(() => "queue consumer"),
  ...c.ratelimits.map((b) => `rate limiter ${b.name}`),
  ...c.r2_buckets.map((b) => `r2 ${b.binding}`),
];
const resources = (c) => [
  ...c.d1_databases.map((b) => `D1 database ${b.database_name}`),
  ...(c.queues.producers ?? []).map((b) => `queue ${b.queue}`),
  ...(c.queues.consumers ?? []).flatMap((b) => [`queue ${b.queue}`, ...(b.dead_letter_queue ? [`queue ${b.dead_letter_queue}`] : [])]),
  ...c.r2_buckets.map((b) => `bucket ${b.bucket_name}`),
  ...c.ratelimits.map((b) => `rate-limiter namespace ${b.namespace_id}`),
  `Worker ${c.name}`,
];
const problems = [];
const seen = new Map();
for (const [env, c] of Object.entries(envs)) {
  for (const key of Object.keys(top.vars)) if (!(key in c.vars)) problems.push(`env.${env} does not declare the var ${key} ([vars] does; vars are not inherited)`);
  const bound = new Set(bindingNames(c));
  for (const b of new Set(bindingNames(top))) if (!bound.has(b)) problems.push(`env.${env} has no ${b} (the top level has; bindings are not inherited)`);
  for (const r of new Set(resources(c))) {
    if (seen.has(r)) problems.push(`env.${env} and env.${seen.get(r)} share the ${r}`);
    else seen.set(r, env);
  }
}
if (problems.length > 0) {
  console.error(`deploy-dry-run: wrangler.toml's environments:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`deploy-dry-run: ${names.join(", ")}: every var and binding of the top level, no resource shared`);
EOF

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for env in "${envs[@]}"; do
  if ! npx wrangler deploy --dry-run --env "$env" --outdir "$out/$env" >"$out/$env.log" 2>&1; then
    cat "$out/$env.log"
    echo "deploy-dry-run: wrangler deploy --dry-run --env $env failed" >&2
    exit 1
  fi
  if grep -q "exists at the top level, but not on" "$out/$env.log"; then
    grep -A2 "exists at the top level, but not on" "$out/$env.log"
    echo "deploy-dry-run: env.$env misses a field that wrangler does not inherit" >&2
    exit 1
  fi
  echo "deploy-dry-run: --env $env: $(grep -m 1 'Total Upload' "$out/$env.log"), $(grep -c 'Environment Variable' "$out/$env.log") vars, bindings: $(grep -E '(Queue|D1 Database|R2 Bucket|Rate Limit) *$' "$out/$env.log" | awk '{print $1}' | sed 's/^env\.//' | paste -sd ' ' -)"
done
