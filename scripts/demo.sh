#!/usr/bin/env bash
# The README's demo: a sandbox of 8 redis-server nodes, a 3-shard cluster with 100,000 keys,
# then shardform import -> plan (no changes) -> a 4th shard in the spec -> plan, Markdown, check.
# Ports: 7000-7007 (bus 17000-17007); set SHARDFORM_DEMO_PORT to move them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

port=${SHARDFORM_DEMO_PORT:-7000}
dir=.sandbox
sf() { node bin/shardform.js "$@"; }
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ shardform %s\n' "$*"; sf "$@"; }

if [[ -f $dir/sandbox.json ]]; then
  say "stopping the previous sandbox"
  sf sandbox down --dir "$dir" || true
fi

say "start 8 empty cluster nodes"
run sandbox up --nodes 8 --base-port "$port" --dir "$dir"
nodes=()
for i in 0 1 2 3 4 5; do nodes+=("127.0.0.1:$((port + i))"); done

say "create a 3-shard cluster with redis-cli (shardform apply is the next step of the project)"
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log"
echo "(redis-cli output in $dir/create.log)"
# wait until every node agrees and replicas are in sync
for _ in $(seq 1 100); do
  if sf check --seed "127.0.0.1:$port" >/dev/null 2>&1; then break; fi
  sleep 0.2
done

say "write 100,000 test keys"
run populate --seed "127.0.0.1:$port" --keys 100000

say "import the live cluster as a spec"
run import --seed "127.0.0.1:$port" --out "$dir/cluster.yaml" --force
cat "$dir/cluster.yaml"

say "plan the imported spec: no changes expected"
run plan "$dir/cluster.yaml" --detailed-exitcode

say "add a fourth shard (master $((port + 6)), replica $((port + 7))) and plan"
{ cat "$dir/cluster.yaml"; printf '  - master: 127.0.0.1:%d\n    replicas: [127.0.0.1:%d]\n' $((port + 6)) $((port + 7)); } >"$dir/scale-out.yaml"
set +e
run plan "$dir/scale-out.yaml" --detailed-exitcode --out "$dir/plan.json"
code=$?
set -e
echo "(exit code $code: 2 means the plan has changes)"
[[ $code -eq 2 ]] || exit 1

say "the same plan as a pull-request comment (first lines)"
sf show "$dir/plan.json" --markdown | head -30

say "cluster health"
run check --seed "127.0.0.1:$port"

say "done"
echo "The sandbox keeps running. Try: node bin/shardform.js plan $dir/scale-out.yaml"
echo "Stop it with: node bin/shardform.js sandbox down --dir $dir"
