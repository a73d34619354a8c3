#!/bin/sh
# ringfetch bench vs wrk, h2load and gcannon, pinned (server CPU 0, client CPU 1); see
# scripts/bench_peers.py for the cases (closed loop, tls*, rate10k/20k/40k, latency, scale)
# and options (--before OLD/ringfetch for a before/after in one sitting). gcannon comes from
# $GCANNON, else is built from $GCANNON_SRC (default ../shared/peers/gcannon beside the
# checkout) with gcc and liburing-dev. Results go in docs/benchmarks.md.
set -eu
cd "$(dirname "$0")/.."
scripts/setup
make --no-print-directory all >/dev/null
exec /usr/bin/python3 scripts/bench_peers.py "$@"
