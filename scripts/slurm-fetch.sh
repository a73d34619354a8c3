#!/bin/bash
# Submits a sharded `ringfetch fetch` to Slurm: a job array of SHARDS tasks
# (deploy/slurm/fetch-array.sbatch), then the merge (deploy/slurm/merge.sbatch) as a job
# that starts only once every task has succeeded (--dependency=afterok on the array).
#
# usage: scripts/slurm-fetch.sh [-n SHARDS] [-p MAX_RUNNING] [--sbatch-opt OPT]...
#            URLS OUTDIR [FETCH_OPTIONS...]
#   -n SHARDS        array tasks, one shard each (default 4)
#   -p MAX_RUNNING   at most this many tasks at once (sbatch --array=0-N%P)
#   --sbatch-opt OPT an extra sbatch option for both jobs (repeatable): --partition=...,
#                    --account=..., --container-image=... (pyxis)
# Prints the two job ids; the rows end up in OUTDIR/all.jsonl, logs in the current
# directory. RINGFETCH=/path/to/ringfetch is passed on to the jobs.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
shards=4 throttle= opts=()
usage() {
    sed -n '/^# usage:/,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        -n) shards=$2; shift 2 ;;
        -p) throttle=%$2; shift 2 ;;
        --sbatch-opt) opts+=("$2"); shift 2 ;;
        -h|--help) usage ;;
        -*) echo "slurm-fetch: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 2 ] || usage
case $shards in ''|*[!0-9]*|0) echo "slurm-fetch: bad -n $shards" >&2; exit 2 ;; esac
# Absolute paths: the jobs may start in another directory of the cluster's shared disk.
urls=$(readlink -f "$1") outdir=$(readlink -f "$2")
shift 2
[ -r "$urls" ] || { echo "slurm-fetch: cannot read $urls" >&2; exit 2; }
mkdir -p "$outdir"
# Shard files of an earlier run with another N would be merged too (and fail as duplicates).
rm -f "$outdir"/shard-*.jsonl

# --parsable prints "JOBID" or "JOBID;CLUSTER".
array=$(sbatch --parsable "${opts[@]}" --array="0-$((shards - 1))$throttle" \
    "$here/deploy/slurm/fetch-array.sbatch" "$urls" "$outdir" "$@")
array=${array%%;*}
merge=$(sbatch --parsable "${opts[@]}" --dependency="afterok:$array" \
    "$here/deploy/slurm/merge.sbatch" "$urls" "$outdir")
merge=${merge%%;*}
echo "slurm-fetch: array job $array ($shards tasks), merge job $merge -> $outdir/all.jsonl"
