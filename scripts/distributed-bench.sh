#!/bin/bash
# A load test from several machines at once with GNU parallel over ssh: every generator
# runs `ringfetch bench --start-at T --json` with one common T, its report comes back, and
# `ringfetch bench-merge` adds the reports up (percentiles of all the samples, the start
# spread). The one-liner it wraps (docs/scale-out.md):
#
#   T=$(( $(date +%s) + 10 ))
#   seq 0 3 | parallel -S 2/host1,2/host2 --return gen-{}.json --cleanup \
#       ringfetch bench -q -c 256 -d 60s --start-at $T --json http://server:8080/ '>' gen-{}.json
#   ringfetch bench-merge gen-*.json -o total.json --html total.html
#
# usage: scripts/distributed-bench.sh [-S LOGINS] [-g GENS] [--start-in SEC] [-d DIR]
#            [--ringfetch PATH] [--ssh CMD] -- BENCH_OPTIONS... URL
#   -S LOGINS     hosts, comma-separated, as GNU parallel --sshlogin ("host" or "user@host";
#                 ":" is this machine, the default)
#   -g GENS       generators per host (default 1); all N = hosts x GENS run at once
#   --start-in S  the common start is S seconds from now (default 5): long enough for
#                 ssh to reach every host and each generator to set up its connections
#   -d DIR        where gen-K.json, total.json and total.html go (default: bench-TIME)
#   --ringfetch   the ringfetch command on the hosts and here (default: ringfetch)
#   --ssh CMD     how parallel reaches a host (default ssh)
# The hosts' clocks must agree (NTP or PTP): start_offset_us in each report is measured
# against the host's own clock. Each host needs ringfetch, perl and rsync.
set -euo pipefail

logins=: gens=1 start_in=5 dir= ringfetch=ringfetch ssh=
usage() {
    sed -n '/^# usage:/,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        -S) logins=$2; shift 2 ;;
        -g) gens=$2; shift 2 ;;
        --start-in) start_in=$2; shift 2 ;;
        -d) dir=$2; shift 2 ;;
        --ringfetch) ringfetch=$2; shift 2 ;;
        --ssh) ssh=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) echo "distributed-bench: unknown option $1 (bench options go after --)" >&2; usage ;;
    esac
done
[ $# -ge 1 ] || usage
case $gens in ''|*[!0-9]*|0) echo "distributed-bench: bad -g $gens" >&2; exit 2 ;; esac

# GENS slots on every host, so that all generators run at once: one waiting for a slot
# would start after the others, and its start_offset_us would show it.
IFS=, read -r -a hosts <<<"$logins"
slots=() remote=0
for h in "${hosts[@]}"; do
    slots+=("$gens/$h")
    [ "$h" = : ] || remote=1
done
n=$((${#hosts[@]} * gens))
dir=$(readlink -f "${dir:-bench-$(date +%Y%m%d-%H%M%S)}")
mkdir -p "$dir"
rm -f "$dir"/gen-*.json
cd "$dir"

transfer=()
[ $remote = 1 ] && transfer=(--return "gen-{}.json" --cleanup)
start_at=$(date +%s.%N | awk -v d="$start_in" '{ printf "%.3f", $1 + d }')
# The report goes to a temporary name first: a generator that fails leaves no gen-K.json.
cmd="$(printf '%q ' "$ringfetch" bench -q --json --start-at "$start_at" "$@")> gen-{}.json.tmp && mv gen-{}.json.tmp gen-{}.json"
echo "distributed-bench: $n generators over $logins, starting at $start_at" >&2
status=0
seq 0 $((n - 1)) | parallel --will-cite -S "$(IFS=,; echo "${slots[*]}")" \
    ${ssh:+--ssh "$ssh"} --joblog "$dir/joblog" "${transfer[@]}" "$cmd" || status=$?
if [ $status -ne 0 ]; then
    echo "distributed-bench: $status generator(s) failed (see $dir/joblog)" >&2
    exit 1
fi
"$ringfetch" bench-merge gen-*.json -o total.json --html total.html
# The merged report's key figures, and how far apart the generators started.
python3 - total.json >&2 <<'EOF' || true
import json, sys
j = json.load(open(sys.argv[1]))
lat = j["latency_us"]
print(f"distributed-bench: {j['generators']} generators, {j['requests']} requests, "
      f"{j['rps']:.0f}/s, p50 {lat['p50']} us, p99 {lat['p99']} us, p99.9 {lat['p999']} us, "
      f"start spread {j.get('start_spread_s', 0) * 1e3:.3f} ms")
EOF
echo "distributed-bench: $dir/total.json, $dir/total.html" >&2
