#!/bin/sh
# A 1,000,000-line list fetched in one run and as 8 shards (--shard K/8, then
# JOB_COMPLETION_INDEX), merged and compared row by row; merge's memory and its errors on
# damaged shards. See scripts/shard_check.py. Results go in docs/scale-out.md.
set -eu
cd "$(dirname "$0")/.."
scripts/setup
scripts/setup time   # GNU time: merge's peak RSS
make --no-print-directory all >/dev/null
exec /usr/bin/python3 scripts/shard_check.py "$@"
