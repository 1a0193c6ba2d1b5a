#!/usr/bin/env bash
# The README's demo, the whole story on a local sandbox:
#   8 bare redis-server nodes -> apply cluster.example.yaml (3 shards with replicas) -> 100,000 keys
#   -> plan examples/scale-out.yaml (a 4th shard) -> apply it -> verify every key -> check.
# Ports: 7000-7007 (bus 17000-17007); set SHARDFORM_DEMO_PORT to move them (the specs say 7000-7007).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

port=${SHARDFORM_DEMO_PORT:-7000}
dir=.sandbox
sf() { node bin/shardform.js "$@"; }
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ shardform %s\n' "$*"; sf "$@"; }
specs=(cluster.example.yaml examples/scale-out.yaml)
if [[ $port != 7000 ]]; then
  # Same specs on other ports.
  mkdir -p "$dir"
  for f in "${specs[@]}"; do
    sed -E "s/127\.0\.0\.1:70(0[0-9])/127.0.0.1:PORT\1/g" "$f" | awk -v base="$port" '{ while (match($0, /PORT0[0-9]/)) { n = substr($0, RSTART + 5, 1); $0 = substr($0, 1, RSTART - 1) (base + n) substr($0, RSTART + RLENGTH) } print }' >"$dir/$(basename "$f")"
  done
  specs=("$dir/cluster.example.yaml" "$dir/scale-out.yaml")
fi

if [[ -f $dir/sandbox.json ]]; then
  say "stopping the previous sandbox"
  sf sandbox down --dir "$dir" || true
fi

say "start 8 bare cluster-enabled redis-server nodes"
run sandbox up --nodes 8 --base-port "$port" --dir "$dir"

say "create a 3-shard cluster with replicas from ${specs[0]}"
run apply "${specs[0]}" --auto-approve --state-dir "$dir"

say "write 100,000 test keys"
run populate --seed "127.0.0.1:$port" --keys 100000

say "plan a fourth shard: ${specs[1]}"
set +e
run plan "${specs[1]}" --detailed-exitcode --out "$dir/scale-out.plan.json"
code=$?
set -e
echo "(exit code $code: 2 means the plan has changes)"
[[ $code -eq 2 ]] || exit 1

say "the same plan as a pull-request comment (first lines)"
sf show "$dir/scale-out.plan.json" --markdown | head -24

say "apply the reviewed plan (a checkpoint is written after every step)"
run apply "$dir/scale-out.plan.json"

say "every key still there?"
run populate --seed "127.0.0.1:$port" --keys 100000 --verify

say "the spec is reached"
run plan "${specs[1]}" --detailed-exitcode

say "cluster health"
run check --seed "127.0.0.1:$port"

say "done"
echo "The sandbox keeps running on 127.0.0.1:$port-$((port + 7)). Try: node bin/shardform.js plan examples/scale-in.yaml"
echo "Stop it with: node bin/shardform.js sandbox down --dir $dir"
