#!/usr/bin/env bash
# Installs what shardform needs on a fresh machine, then builds it. Safe to run again.
#   - Node.js >= 20 must already be there (checked)
#   - redis-server and redis-cli: installed with apt-get when missing and possible without a prompt
#   - npm packages: `npm ci` when node_modules is missing or older than package-lock.json
set -euo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if (( node_major < 20 )); then
  echo "shardform needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none)). Install it from https://nodejs.org or your package manager." >&2
  exit 1
fi

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  sudo=""
  if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
  if command -v apt-get >/dev/null && { [[ $(id -u) -eq 0 ]] || [[ -n $sudo ]]; }; then
    echo "==> installing redis-server and redis-tools with apt-get"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  else
    echo "redis-server is missing: install it with \`sudo apt-get install -y redis-server\` (Debian/Ubuntu) or \`brew install redis\` (macOS), then run this again." >&2
    exit 1
  fi
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "==> npm run build"
npm run --silent build
