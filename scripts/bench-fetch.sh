#!/bin/sh
# ringfetch fetch vs curl --parallel and aiohttp on one URL list and one nginx; see
# scripts/bench_fetch.py for the parts and options (--before OLD/ringfetch for a before/after
# in one sitting). Results go in docs/benchmarks.md.
set -eu
cd "$(dirname "$0")/.."
scripts/setup
scripts/setup time   # GNU time: the clients' peak RSS (see measure() in bench_fetch.py)
make --no-print-directory all >/dev/null
exec /usr/bin/python3 scripts/bench_fetch.py "$@"
