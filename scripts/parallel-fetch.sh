#!/bin/bash
# One `ringfetch fetch` split over several machines with GNU parallel over ssh, then joined
# and checked by `ringfetch merge`. The one-liner it wraps (docs/scale-out.md):
#
#   seq 0 7 | parallel -S host1,host2 -j4 --basefile urls.txt --return shard-{}-of-8.jsonl \
#       --cleanup ringfetch fetch -q --shard {}/8 -i urls.txt -o shard-{}-of-8.jsonl
#   ringfetch merge -o all.jsonl --input urls.txt shard-*-of-8.jsonl
#
# usage: scripts/parallel-fetch.sh [-S LOGINS] [-n SHARDS] [-j JOBS] [-d DIR] [-o OUT]
#            [--ringfetch PATH] [--ssh CMD] URLS [-- FETCH_OPTIONS...]
#   -S LOGINS     GNU parallel --sshlogin: host1,host2 or 4/host1,2/user@host2 (N/ = jobs
#                 there); ":" is this machine (the default)
#   -n SHARDS     shards (default: one per job slot: the N/ counts, else -j per host)
#   -j JOBS       shards at once on a host without an N/ count (default 1)
#   -d DIR        where the shard files and parallel's job log go (default: OUT.shards)
#   -o OUT        the merged rows (default: all.jsonl)
#   --ringfetch   the ringfetch command on the hosts and for the merge here (default:
#                 ringfetch on the PATH)
#   --ssh CMD     how parallel reaches a host (default ssh); the test suite passes a
#                 stand-in that runs each "host" in a local directory
# Each host needs ringfetch, perl and rsync; the URL list is copied to each host
# (--basefile) and each shard file copied back (--return) and removed there (--cleanup).
set -euo pipefail

logins=: shards= jobs=1 dir= out=all.jsonl ringfetch=ringfetch ssh=
usage() {
    sed -n '/^# usage:/,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        -S) logins=$2; shift 2 ;;
        -n) shards=$2; shift 2 ;;
        -j) jobs=$2; shift 2 ;;
        -d) dir=$2; shift 2 ;;
        -o) out=$2; shift 2 ;;
        --ringfetch) ringfetch=$2; shift 2 ;;
        --ssh) ssh=$2; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "parallel-fetch: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -ge 1 ] || usage
urls=$(readlink -f "$1")
shift
[ "${1:-}" = -- ] && shift
[ -r "$urls" ] || { echo "parallel-fetch: cannot read $urls" >&2; exit 2; }

# One shard per job slot by default, so that every shard runs at once.
if [ -z "$shards" ]; then
    shards=0
    IFS=, read -r -a entries <<<"$logins"
    for e in "${entries[@]}"; do
        case $e in
            [0-9]*/*) shards=$((shards + ${e%%/*})) ;;
            *) shards=$((shards + jobs)) ;;
        esac
    done
fi
case $shards in ''|*[!0-9]*|0) echo "parallel-fetch: bad -n $shards" >&2; exit 2 ;; esac

out=$(readlink -f "$out")
dir=$(readlink -f "${dir:-$out.shards}")
mkdir -p "$dir"
# Jobs name the list by a relative path: locally it is this symlink in DIR (the jobs run
# there), remotely the copy --basefile makes in the login directory (rsync -L follows the
# link). Shard files have N in their name, so files of a run with another N never mix in.
input=ringfetch-input.txt
rm -f "$dir/$input" "$dir"/shard-*-of-"$shards".jsonl
ln -s "$urls" "$dir/$input"
cd "$dir"

transfer=()
remote=$(tr , '\n' <<<"$logins" | grep -vcx '[0-9]*/\{0,1\}:' || true)
if [ "$remote" -gt 0 ]; then
    transfer=(--basefile "$input" --return "shard-{}-of-$shards.jsonl" --cleanup)
fi
export PARALLEL_RSYNC_OPTS=-rLDzR
cmd="$(printf '%q ' "$ringfetch" fetch -q "$@")--shard {}/$shards -i $input -o shard-{}-of-$shards.jsonl"
echo "parallel-fetch: $shards shards over $logins" >&2
status=0
seq 0 $((shards - 1)) | parallel --will-cite -S "$logins" -j "$jobs" ${ssh:+--ssh "$ssh"} \
    --joblog "$dir/joblog" --retries 2 "${transfer[@]}" "$cmd" || status=$?
if [ $status -ne 0 ]; then
    echo "parallel-fetch: $status shard job(s) failed (see $dir/joblog); merging what there is" >&2
fi
"$ringfetch" merge -o "$out" --input "$urls" "$dir"/shard-*-of-"$shards".jsonl
echo "parallel-fetch: $(wc -l <"$out") rows in $out" >&2
exit $status
