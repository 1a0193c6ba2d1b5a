#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs the whole test suite
# (unit tests and real-cluster tests against redis-server processes on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
