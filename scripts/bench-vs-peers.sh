#!/bin/sh
# ringfetch bench vs wrk and h2load, pinned (server CPU 0, client CPU 1); see
# scripts/bench_peers.py for the cases and options. Results go in docs/benchmarks.md.
set -eu
cd "$(dirname "$0")/.."
scripts/setup
make --no-print-directory all >/dev/null
exec /usr/bin/python3 scripts/bench_peers.py "$@"
