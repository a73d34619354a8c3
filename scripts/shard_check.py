"""A sharded fetch run against one unsharded run of the same list, end to end.

    scripts/shard-check.sh [--lines 1000000] [--shards 8] [-c 1000]

One list of LINES lines with mixed outcomes (200s, 404s, refused ports, invalid lines, blank
lines and comments) over a local nginx:
  1. fetched in one run;
  2. fetched as SHARDS separate processes with `--shard K/N`, merged with `ringfetch merge`;
  3. the same with JOB_COMPLETION_INDEX=K and `--shards N` (a Kubernetes Indexed Job);
each merged file must equal the single run's output line for line once the timing fields
(connect_ms, ttfb_ms, total_ms) and ip are removed. Each merge's peak RSS (GNU time) must be
under 32 MB. Then one shard file is damaged three ways (a deleted row, a duplicated row, a
torn last row): each merge must fail (exit 1) naming that shard and the line.
Exits 1 if anything does not hold.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

TIMING = ("connect_ms", "ttfb_ms", "total_ms", "ip")
RSS_LIMIT_MB = 32
SHARD_ENV = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
             "SLURM_ARRAY_TASK_MIN")


def write_list(path, n, ports, refused):
    """Line L: every 50th a 404, every 100th (offset 13) a refused port, every 97th (offset
    5) not a URL, every 89th (offset 3) blank, every 211th a comment; the rest 200s."""
    kinds = {}
    with open(path, "w") as f:
        for line in range(1, n + 1):
            if line % 89 == 3:
                f.write("\n")
                kind = "blank"
            elif line % 211 == 7:
                f.write("# a comment\n")
                kind = "comment"
            elif line % 97 == 5:
                f.write(f"not a url {line}\n")
                kind = "invalid"
            elif line % 100 == 13:
                f.write(f"http://127.0.0.1:{refused[line % len(refused)]}/?l={line}\n")
                kind = "refused"
            elif line % 50 == 0:
                f.write(f"http://127.0.0.1:{ports[line % len(ports)]}/status/404?l={line}\n")
                kind = "404"
            else:
                f.write(f"http://127.0.0.1:{ports[line % len(ports)]}/?l={line}\n")
                kind = "200"
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in SHARD_ENV}
    env.update(extra or {})
    return env


def fetch(rf, args, out, env=None):
    t0 = time.monotonic()
    r = subprocess.run([rf, "fetch", "-q"] + args + ["-o", out], stderr=subprocess.PIPE,
                       text=True, env=clean_env(env), timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"fetch {' '.join(args)}: exit {r.returncode}: {r.stderr[-2000:]}")
    return time.monotonic() - t0


def stripped(path):
    """The rows without their timing fields, one string each."""
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            for k in TIMING:
                row.pop(k, None)
            yield json.dumps(row, sort_keys=True)


def compare(merged, single):
    n = 0
    for n, (a, b) in enumerate(zip(stripped(merged), stripped(single)), 1):
        if a != b:
            return f"row {n} differs:\n  merged {a}\n  single {b}"
    a_len = sum(1 for _ in open(merged))
    b_len = sum(1 for _ in open(single))
    if a_len != b_len:
        return f"{a_len} merged rows, {b_len} single-run rows"
    return None


def merge(rf, inp, parts, out):
    proc, peak_kb = harness.run_peak_rss([rf, "merge", "-o", out, "--input", inp] + parts,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         text=True, timeout=600)
    return proc.returncode, proc.stderr.strip(), peak_kb / 1024.0


def damage(rf, inp, parts, tmp, failures):
    """A deleted row, a duplicated row and a torn last row in shard 3: each merge fails and
    its message names the shard file and a line."""
    victim = parts[3]
    with open(victim) as f:
        rows = f.readlines()
    mid = len(rows) // 2
    cases = {
        "deleted row": rows[:mid] + rows[mid + 1:],
        "duplicated row": rows[:mid + 1] + rows[mid:],
        "torn last row": rows[:-1] + [rows[-1][:len(rows[-1]) // 2]],
    }
    want_line = {"deleted row": json.loads(rows[mid])["line"],
                  "duplicated row": json.loads(rows[mid])["line"],
                  "torn last row": None}
    for name, content in cases.items():
        bad = os.path.join(tmp, "damaged", os.path.basename(victim))
        os.makedirs(os.path.dirname(bad), exist_ok=True)
        with open(bad, "w") as f:
            f.writelines(content)
        set_ = [bad if p == victim else p for p in parts]
        rc, err, _ = merge(rf, inp, set_, os.path.join(tmp, "damaged.jsonl"))
        names_shard = os.path.basename(victim) in err
        names_line = "line" in err and (want_line[name] is None or str(want_line[name]) in err)
        ok = rc == 1 and names_shard and names_line
        print(f"  {name:<15} exit {rc}{'' if ok else '  <- NOT as required'}:", flush=True)
        for line in err.splitlines() or ["(no message)"]:
            print(f"      {line}", flush=True)
        if not ok:
            failures.append(f"{name}: exit {rc}, message {err!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("-c", "--concurrency", type=int, default=1000)
    ap.add_argument("--ringfetch", default=os.path.join(ROOT, "build", "ringfetch"))
    a = ap.parse_args()
    rf, n, k_total = a.ringfetch, a.shards, a.lines
    failures = []
    tmp = tempfile.mkdtemp(prefix="rf-shard-check-")
    try:
        with harness.Nginx(n_ports=4) as ng:
            inp = os.path.join(tmp, "urls.txt")
            kinds = write_list(inp, k_total, ng.ports, harness.free_ports(4))
            print(f"{k_total} lines: " + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
                  + f"; -c {a.concurrency}; nginx 1 worker, 4 ports", flush=True)
            single = os.path.join(tmp, "single.jsonl")
            wall = fetch(rf, ["-c", str(a.concurrency), "-i", inp], single)
            print(f"one run: {sum(1 for _ in open(single))} rows in {wall:.1f} s", flush=True)
            for how in ("--shard K/N", "JOB_COMPLETION_INDEX"):
                parts, walls = [], []
                for k in range(n):
                    part = os.path.join(tmp, f"{'env' if how[0] == 'J' else 'shard'}{k}.jsonl")
                    if how[0] == "J":
                        walls.append(fetch(rf, ["-c", str(a.concurrency), "--shards", str(n),
                                                "-i", inp], part,
                                           env={"JOB_COMPLETION_INDEX": str(k)}))
                    else:
                        walls.append(fetch(rf, ["-c", str(a.concurrency), "--shard",
                                                f"{k}/{n}", "-i", inp], part))
                    parts.append(part)
                merged = os.path.join(tmp, "merged.jsonl")
                rc, err, rss = merge(rf, inp, parts, merged)
                diff = compare(merged, single) if rc == 0 else f"merge exit {rc}: {err}"
                print(f"{n} shards by {how}: {n} processes, {min(walls):.1f}-{max(walls):.1f} s "
                      f"each; merge exit {rc}, peak RSS {rss:.1f} MB (limit {RSS_LIMIT_MB}); "
                      f"merged == one run without {', '.join(TIMING)}: "
                      f"{'yes' if diff is None else 'NO: ' + diff}", flush=True)
                if diff is not None:
                    failures.append(f"{how}: {diff}")
                if rss >= RSS_LIMIT_MB:
                    failures.append(f"{how}: merge peak RSS {rss:.1f} MB")
            print("damaged shard " + os.path.basename(parts[3]) + ":", flush=True)
            damage(rf, inp, parts, tmp, failures)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("all held" if not failures else "FAILED: " + "; ".join(failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
