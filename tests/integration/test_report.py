"""ringfetch merge, bench-merge and report against generated files: exact joins, the errors
each broken shard gives, merged percentiles against an independent computation, memory, and
the HTML page in a real headless browser."""
import csv
import hashlib
import html.parser
import json
import math
import os
import random
import shutil
import subprocess

import harness
from fractions import Fraction

CHROMIUM = "/usr/bin/chromium"


def run(ctx, args, timeout=60):
    r = subprocess.run([ctx.ringfetch] + list(args), capture_output=True, text=True,
                       timeout=timeout, cwd=ctx.tmpdir)
    return r.returncode, r.stdout, r.stderr


def leftovers(d, name):
    """Files in d that a failed write to `name` may have left (the output or its temporary)."""
    return [f for f in os.listdir(d) if f == name or f.startswith(name + ".tmp.")]


# ------------------------------------------------------------------ fetch shards


def fetch_input(n_lines):
    """An input file's text and its request lines [(line, index, url)]: every 7th line a
    comment, every 11th blank, one with a BOM and white space, as fetch reads them."""
    text, reqs = [], []
    for line in range(1, n_lines + 1):
        if line % 7 == 0:
            text.append("# a comment")
        elif line % 11 == 0:
            text.append("   \t")
        elif line == 1:
            text.append("\ufeff  http://127.0.0.1:8080/first  ")
            reqs.append((line, len(reqs), "http://127.0.0.1:8080/first"))
        else:
            url = f"http://127.0.0.1:8080/p/{line}?q=a,b"
            text.append(url)
            reqs.append((line, len(reqs), url))
    return "\n".join(text) + "\n", reqs


def jsonl_row(line, index, url):
    return json.dumps({"index": index, "line": line, "url": url, "status": 200, "error": None,
                       "bytes": 12, "total_ms": 0.25}, separators=(",", ":")) + "\n"


CSV_HEADER = "index,url,status,error,bytes,line,error_detail\n"


def csv_field(s):
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\r\n') else s


def csv_row(line, index, url):
    # some rows carry a quoted field with a comma, doubled quotes and a line break
    detail = f'said "no",\nthen closed ({line})' if line % 5 == 0 else ""
    return ",".join([str(index), csv_field(url), "200", "", "12", str(line),
                     csv_field(detail)]) + "\n"


def write_shards(d, reqs, n, fmt, stem="shard"):
    """fetch --shard K/N's outputs: input line L goes to shard (L-1) mod N, in line order."""
    make = jsonl_row if fmt == "jsonl" else csv_row
    paths = [os.path.join(d, f"{stem}{k + 1}.{fmt}") for k in range(n)]
    files = [open(p, "w") for p in paths]
    for f in files:
        if fmt == "csv":
            f.write(CSV_HEADER)
    for line, index, url in reqs:
        files[(line - 1) % n].write(make(line, index, url))
    for f in files:
        f.close()
    return paths


def expected(reqs, fmt, skip=()):
    make = jsonl_row if fmt == "jsonl" else csv_row
    head = CSV_HEADER if fmt == "csv" else ""
    return head + "".join(make(*r) for r in reqs if r[0] not in skip)


def file_lines(path):
    with open(path) as f:
        return f.readlines()


def set_lines(path, lines):
    with open(path, "w") as f:
        f.writelines(lines)


def test_merge_jsonl_and_csv(ctx):
    text, reqs = fetch_input(500)
    inp = os.path.join(ctx.tmpdir, "urls.txt")
    with open(inp, "w", encoding="utf-8") as f:
        f.write(text)
    for fmt in ("jsonl", "csv"):
        paths = write_shards(ctx.tmpdir, reqs, 4, fmt)
        out = os.path.join(ctx.tmpdir, "all." + fmt)
        # shard files in any order on the command line; with and without the input
        for extra in ([], ["--input", inp]):
            rc, _, err = run(ctx, ["merge", "-o", out] + extra + paths[::-1])
            assert rc == 0 and err == "", (fmt, extra, rc, err)
            with open(out) as f:
                assert f.read() == expected(reqs, fmt), (fmt, extra)
    # one shard is a merge of one file
    paths = write_shards(ctx.tmpdir, reqs, 1, "jsonl", stem="single")
    rc, _, err = run(ctx, ["merge", "-o", "one.jsonl", paths[0]])
    assert rc == 0, err
    with open(os.path.join(ctx.tmpdir, "one.jsonl")) as f:
        assert f.read() == expected(reqs, "jsonl")


def test_merge_missing_row(ctx):
    text, reqs = fetch_input(200)
    inp = os.path.join(ctx.tmpdir, "urls.txt")
    with open(inp, "w", encoding="utf-8") as f:
        f.write(text)
    paths = write_shards(ctx.tmpdir, reqs, 4, "jsonl")
    # shard 2 holds lines 2, 6, 10, 18, ...: delete its 4th row, input line 18
    rows = file_lines(paths[1])
    gone = json.loads(rows[3])
    assert gone["line"] == 18
    set_lines(paths[1], rows[:3] + rows[4:])
    # the merge notices at the next row, input line 19, the 3rd row of shard 3 (3, 15, 19)
    rc, _, err = run(ctx, ["merge", "-o", "out.jsonl"] + paths)
    assert rc == 1, err
    assert f"shard3.jsonl:3: 1 row(s) missing before this one (index {gone['index']}): they " \
           f"must be on input lines 18\n" in err, err
    # line 17 is a row, so 18 is the one line left: named without the input too
    assert f"missing: input line 18 (shard 1/4 by (L-1) mod 4: {paths[1]})" in err, err
    assert leftovers(ctx.tmpdir, "out.jsonl") == [], os.listdir(ctx.tmpdir)
    # with the input: the exact line and the shard file that should have had it
    rc, _, err = run(ctx, ["merge", "-o", "out.jsonl", "--input", inp] + paths)
    assert rc == 1, err
    assert (f"missing: index {gone['index']}, {inp} line 18 (shard 1/4 by (L-1) mod 4: "
            f"{paths[1]})") in err, err
    # --allow-missing writes the rest, warns, and succeeds
    rc, _, err = run(ctx, ["merge", "-o", "out.jsonl", "--allow-missing"] + paths)
    assert rc == 0, err
    assert "warning: 1 row(s) missing in 1 gap(s)" in err, err
    with open(os.path.join(ctx.tmpdir, "out.jsonl")) as f:
        assert f.read() == expected(reqs, "jsonl", skip={18})
    # the input knows of rows missing at the very end, which no shard can show
    last = reqs[-1][0]
    k = (last - 1) % 4
    rows = file_lines(paths[k])
    set_lines(paths[k], rows[:-1])
    rc, _, err = run(ctx, ["merge", "-o", "out.jsonl", "--input", inp, "--allow-missing"]
                     + paths)
    assert rc == 0, err
    assert f"1 row(s) missing at the end (index {reqs[-1][1]})" in err, err
    assert f"{inp} line {last} (shard {k}/4" in err, err


def test_merge_duplicate_and_disorder(ctx):
    _, reqs = fetch_input(120)
    for fmt in ("jsonl", "csv"):
        paths = write_shards(ctx.tmpdir, reqs, 3, fmt)
        rows = file_lines(paths[2])
        body = rows[1:] if fmt == "csv" else rows
        first = 2 if fmt == "csv" else 1  # the file line of the first row
        # a row written twice in a row (CSV rows here may span two lines)
        dup = [r for r in body if fmt == "jsonl" or r.endswith(",\n")][2]
        pos = rows.index(dup)
        set_lines(paths[2], rows[:pos + 1] + [dup] + rows[pos + 1:])
        rc, _, err = run(ctx, ["merge", "-o", "out"] + paths)
        assert rc == 1, (fmt, err)
        if fmt == "jsonl":
            line = json.loads(dup)["line"]
        else:
            line = int(next(csv.reader([dup]))[5])
        at = sum(r.count("\n") for r in rows[:pos + 1]) + 1
        assert f"shard3.{fmt}:{at}: input line {line} repeats input line {line}" in err, err
        # the same row in two shard files
        write_shards(ctx.tmpdir, reqs, 3, fmt)
        shutil.copy(paths[0], os.path.join(ctx.tmpdir, "copy." + fmt))
        rc, _, err = run(ctx, ["merge", "-o", "out"] + paths + ["copy." + fmt])
        assert rc == 1, err
        assert f"input line 1 is also in {paths[0]}:{first}: duplicate row" in err, err
        # rows out of order inside one shard
        rows = file_lines(paths[0])
        set_lines(paths[0], rows[:first - 1] + [rows[first], rows[first - 1]] + rows[first + 1:])
        rc, _, err = run(ctx, ["merge", "-o", "out"] + paths)
        assert rc == 1, err
        assert f"shard1.{fmt}:{first + 1}: input line 1 comes after input line 4" in err, err
        assert leftovers(ctx.tmpdir, "out") == []


def test_merge_torn_last_row(ctx):
    _, reqs = fetch_input(100)
    for fmt in ("jsonl", "csv"):
        paths = write_shards(ctx.tmpdir, reqs, 4, fmt)
        with open(paths[3]) as f:
            data = f.read()
        n_lines = data.count("\n")
        last_row = max(r[0] for r in reqs if (r[0] - 1) % 4 == 3)
        # what a crash leaves: the last row cut, without its newline
        with open(paths[3], "w") as f:
            f.write(data[:-9])
        at = n_lines if fmt == "jsonl" or last_row % 5 else n_lines - 1
        rc, _, err = run(ctx, ["merge", "-o", "out"] + paths)
        assert rc == 1, err
        assert f"shard4.{fmt}:{at}: torn last row (no final newline)" in err, err
        assert leftovers(ctx.tmpdir, "out") == []
        rc, _, err = run(ctx, ["merge", "-o", "out", "--allow-missing"] + paths)
        assert rc == 0, err
        assert "warning: " in err and f"shard4.{fmt}:{at}: torn last row dropped" in err, err
        with open(os.path.join(ctx.tmpdir, "out")) as f:
            assert f.read() == expected(reqs, fmt, skip={last_row})
        os.unlink(os.path.join(ctx.tmpdir, "out"))
    # a last line that has its newline but does not parse is torn too
    paths = write_shards(ctx.tmpdir, reqs, 4, "jsonl")
    with open(paths[0], "a") as f:
        f.write('{"index":99,"line":\n')
    rc, _, err = run(ctx, ["merge", "-o", "out"] + paths)
    assert rc == 1 and "torn last row (not JSON" in err, err
    # the same line in the middle of a shard is a bad row, not a torn one
    rows = file_lines(paths[0])
    set_lines(paths[0], rows[:2] + ['{"index":99,"line":\n'] + rows[2:-1])
    rc, _, err = run(ctx, ["merge", "-o", "out", "--allow-missing"] + paths)
    assert rc == 1 and "shard1.jsonl:3: bad row: not JSON" in err, err


def test_merge_refuses_mixed_inputs(ctx):
    _, reqs = fetch_input(50)
    j = write_shards(ctx.tmpdir, reqs, 2, "jsonl")
    c = write_shards(ctx.tmpdir, reqs, 2, "csv")
    rc, _, err = run(ctx, ["merge", "-o", "out", j[0], c[1]])
    assert rc == 1 and f"{c[1]}: CSV rows, but the shards before it are JSONL" in err, err
    with open(c[1]) as f:
        data = f.read()
    with open(c[1], "w") as f:
        f.write(data.replace("error_detail", "detail", 1))
    rc, _, err = run(ctx, ["merge", "-o", "out", c[0], c[1]])
    assert rc == 1 and f"{c[1]}:1: CSV header differs from {c[0]}'s" in err, err
    rc, _, err = run(ctx, ["merge", j[0]])
    assert rc == 2 and "-o OUT is required" in err, err
    rc, _, err = run(ctx, ["merge", "-o", "out", "nonexistent.jsonl"])
    assert rc == 1 and "nonexistent.jsonl: cannot open" in err, err


def test_merge_memory(ctx):
    """1,000,000 rows in 8 shards (about 110 MB) are streamed: the merge's peak RSS stays
    under 32 MB, and the output is the exact global order."""
    n_rows, n_shards = 1000000, 8
    d = ctx.tmpdir
    inp = os.path.join(d, "big.txt")
    paths = [os.path.join(d, f"big{k + 1}.jsonl") for k in range(n_shards)]
    files = [open(p, "w") for p in paths]
    digest = hashlib.sha256()
    line = index = 0
    with open(inp, "w") as fin:
        while index < n_rows:
            chunk_in, chunk_out = [], [[] for _ in range(n_shards)]
            ordered = []
            for _ in range(10000):
                line += 1
                if line % 10 == 0:
                    chunk_in.append("# comment\n")
                    continue
                url = f"http://127.0.0.1:8080/p/{line}"
                chunk_in.append(url + "\n")
                row = jsonl_row(line, index, url)
                chunk_out[(line - 1) % n_shards].append(row)
                ordered.append(row)
                index += 1
                if index == n_rows:
                    break
            fin.write("".join(chunk_in))
            for f, rows in zip(files, chunk_out):
                f.write("".join(rows))
            digest.update("".join(ordered).encode())
    for f in files:
        f.close()
    out = os.path.join(d, "big.jsonl")
    proc, peak_kb = harness.run_peak_rss([ctx.ringfetch, "merge", "-o", out, "--input", inp]
                                         + paths, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True, timeout=120)
    err = proc.stderr
    assert proc.returncode == 0, err
    got = hashlib.sha256()
    with open(out, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            got.update(block)
    assert got.hexdigest() == digest.hexdigest()
    print(f"merge of {n_rows} rows in {n_shards} shards: peak RSS {peak_kb} KiB")
    for p in paths + [out, inp]:
        os.unlink(p)
    # AddressSanitizer keeps freed memory in quarantine (256 MB): RSS says nothing there
    if ctx.sanitize_flags:
        ctx.skip(f"the merge is right; its peak RSS ({peak_kb} KiB) under a sanitizer "
                 "is not measured")
    assert peak_kb < 32 * 1024, f"peak RSS {peak_kb} KiB"


test_merge_memory.timeout = 240


# ------------------------------------------------------------------ bench reports


def bucket_index(us):
    """rf_hist's bucket of a value, as include/ringfetch.h describes the layout: 0..255
    exact, then each power of two [2^k, 2^(k+1)) cut into 128 equal buckets."""
    us = min(us, (1 << 26) - 1)
    if us < 256:
        return us
    shift = us.bit_length() - 8
    return (shift << 7) + (us >> shift)


def bucket_highest(index):
    shift = max((index >> 7) - 1, 0)
    return ((index - (shift << 7)) << shift) + (1 << shift) - 1


def percentile(sorted_samples, p):
    """Nearest rank, reported as the highest value of the sample's bucket, capped at the
    maximum: what rf_hist_percentile() promises, from the raw samples."""
    n = len(sorted_samples)
    rank = max(1, math.ceil(Fraction(str(p)) * n / 100))
    return min(bucket_highest(bucket_index(sorted_samples[rank - 1])), sorted_samples[-1])


def bench_report(samples, start, n_intervals=10, interval=1.0, url="http://127.0.0.1:8080/",
                 rate=None, config_extra=None, seed=0):
    """A ringfetch-bench/1 report of these latency samples, sent evenly over n_intervals."""
    rng = random.Random(seed)
    n = len(samples)
    buckets = {}
    for v in samples:
        buckets[bucket_index(v)] = buckets.get(bucket_index(v), 0) + 1
    per = n // n_intervals
    intervals = []
    for k in range(n_intervals):
        chunk = sorted(samples[k * per:(k + 1) * per if k < n_intervals - 1 else n])
        intervals.append({"t_s": (k + 1) * interval, "length_s": interval,
                          "requests": len(chunk), "errors": rng.randrange(4),
                          "bytes": 150 * len(chunk), "rps": len(chunk) / interval,
                          "p50_us": percentile(chunk, 50), "p99_us": percentile(chunk, 99),
                          "max_us": chunk[-1]})
    errors = {"connect": rng.randrange(5), "read": rng.randrange(5), "write": 0,
              "timeout": rng.randrange(5), "non_2xx_3xx": 7}
    duration = n_intervals * interval
    report = {
        "format": "ringfetch-bench/1", "url": url, "targets": 1, "threads": 2,
        "connections": 64, "pipeline": 1, "start_epoch_s": start, "warmup_s": 2.0,
        "duration_s": duration, "interval_s": interval, "requests": n, "rps": n / duration,
        "bytes": 150 * n, "bytes_per_s": 150 * n / duration, "connects": 66,
        "established": 64, "open_at_end": 64, "peak_open": 64, "errors": errors,
        "status": {"200": n - 7, "503": 7}, "latency_method": "clock-per-batch",
        "latency_us": {"p50": percentile(sorted(samples), 50)},
        "histogram": {"layout": "ringfetch-loglinear-v1", "count": n, "min": min(samples),
                      "max": max(samples), "sum": float(sum(samples)),
                      "sumsq": float(sum(v * v for v in samples)),
                      "buckets": [[i, c] for i, c in sorted(buckets.items())]},
        "intervals": intervals, "per_thread": [{"requests": n, "rps": n / duration}],
        "tls_full": 0, "tls_resumed": 0,
        "config": {"method": "GET", "duration_ms": int(duration * 1000), "requests": 0,
                   "rate": rate or 0, "timeout_ms": 10000, "connect_timeout_ms": 10000,
                   "warmup_ms": 2000, "interval_ms": int(interval * 1000)},
    }
    if rate:
        report["rate"] = {"requested": rate, "achieved": n / duration}
    report["config"].update(config_extra or {})
    return report


def generator_samples():
    """Four generators' latencies (µs): different shapes, from exact small values to a tail
    of seconds, so the merged percentiles cross many bucket sizes."""
    rng = random.Random(20240611)
    return [
        [int(rng.lognormvariate(5.0, 0.4)) for _ in range(30000)],
        [int(rng.lognormvariate(6.5, 0.9)) for _ in range(20000)],
        [int(rng.lognormvariate(7.0, 0.5)) if rng.random() < 0.97 else
         rng.randrange(100000, 3000000) for _ in range(25000)],
        [rng.randrange(0, 300) for _ in range(15000)],
    ]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


def test_bench_merge_percentiles_and_totals(ctx):
    d = ctx.tmpdir
    samples = generator_samples()
    offsets = [0.0, 0.1, 0.25, 0.4]
    reports = [bench_report(s, 1796000000.5 + off, rate=5000, seed=i)
               for i, (s, off) in enumerate(zip(samples, offsets))]
    names = [write_json(os.path.join(d, f"gen{i}.json"), r) for i, r in enumerate(reports)]
    rc, out, err = run(ctx, ["bench-merge"] + [os.path.basename(n) for n in names])
    assert rc == 0 and err == "", err
    m = json.loads(out)  # without -o the merged report goes to stdout

    union = sorted(v for s in samples for v in s)
    for key, p in (("p50", 50), ("p75", 75), ("p90", 90), ("p99", 99), ("p999", 99.9),
                   ("p9999", 99.99)):
        assert m["latency_us"][key] == percentile(union, p), (key, m["latency_us"])
    assert m["latency_us"]["min"] == union[0] and m["latency_us"]["max"] == union[-1]
    assert abs(m["latency_us"]["mean"] - sum(union) / len(union)) < 0.01, m["latency_us"]
    h = m["histogram"]
    want = {}
    for v in union:
        want[bucket_index(v)] = want.get(bucket_index(v), 0) + 1
    assert h["layout"] == "ringfetch-loglinear-v1"
    assert h["buckets"] == [[i, c] for i, c in sorted(want.items())]
    assert h["count"] == len(union) and h["min"] == union[0] and h["max"] == union[-1]
    assert h["sum"] == float(sum(union)), h["sum"]

    for key in ("requests", "bytes", "connects", "established", "open_at_end", "peak_open",
                "connections", "threads", "tls_full"):
        assert m[key] == sum(r[key] for r in reports), key
    for cls in reports[0]["errors"]:
        assert m["errors"][cls] == sum(r["errors"][cls] for r in reports), cls
    assert m["status"] == {"200": sum(r["status"]["200"] for r in reports), "503": 28}
    assert abs(m["rps"] - sum(r["rps"] for r in reports)) < 0.01
    assert m["rate"] == {"requested": 20000, "achieved": round(sum(r["rps"] for r in reports), 2),
                         "total_over_generators": 4}, m["rate"]
    assert m["generators"] == 4 and m["inputs"] == [os.path.basename(n) for n in names]
    assert m["start_epoch_s"] == 1796000000.5 and m["start_spread_s"] == 0.4
    assert m["duration_s"] == 10.4 and m["interval_s"] == 1.0
    assert m["config"]["rate"] == 5000 and m["format"] == "ringfetch-bench/1"

    # starts less than half an interval apart: the k-th intervals of all four line up
    assert [iv["t_s"] for iv in m["intervals"]] == [float(k) for k in range(1, 11)]
    for k, iv in enumerate(m["intervals"]):
        mine = [r["intervals"][k] for r in reports]
        assert iv["requests"] == sum(x["requests"] for x in mine), (k, iv)
        assert iv["errors"] == sum(x["errors"] for x in mine), (k, iv)
        assert iv["p99_us_max"] == max(x["p99_us"] for x in mine), (k, iv)
        assert iv["max_us"] == max(x["max_us"] for x in mine) and iv["generators"] == 4
        assert "p99_us" not in iv  # a per-interval p99 of all generators cannot be known

    # merging merged reports gives the same histogram, and counts the generators
    for a, b, o in ((0, 1, "m01.json"), (2, 3, "m23.json")):
        rc, _, err = run(ctx, ["bench-merge", names[a], names[b], "-o", o])
        assert rc == 0, err
    rc, out, err = run(ctx, ["bench-merge", "m01.json", "m23.json"])
    assert rc == 0, err
    mm = json.loads(out)
    assert mm["histogram"] == h and mm["latency_us"] == m["latency_us"]
    assert mm["generators"] == 4 and mm["requests"] == m["requests"]

    # a generator that started 3 s late: its intervals land 3 bins later
    late = dict(reports[1], start_epoch_s=reports[0]["start_epoch_s"] + 3.0)
    write_json(os.path.join(d, "late.json"), late)
    rc, out, err = run(ctx, ["bench-merge", names[0], "late.json"])
    assert rc == 0, err
    ml = json.loads(out)
    assert ml["start_spread_s"] == 3.0 and ml["duration_s"] == 13.0, ml["duration_s"]
    assert [iv["generators"] for iv in ml["intervals"]] == [1, 1, 1] + [2] * 7 + [1, 1, 1]
    assert ml["intervals"][3]["requests"] == (reports[0]["intervals"][3]["requests"] +
                                              late["intervals"][0]["requests"])


def test_bench_merge_refuses_bad_input(ctx):
    d = ctx.tmpdir
    good = write_json(os.path.join(d, "good.json"), bench_report([100, 200, 300], 1796000000.0,
                                                                 n_intervals=1))
    cases = []
    r = bench_report([100, 200], 1796000000.0, n_intervals=1)
    r["histogram"]["layout"] = "hdrhistogram-v2"
    cases.append((r, 'histogram layout "hdrhistogram-v2", expected "ringfetch-loglinear-v1"'))
    r = bench_report([100, 200], 1796000000.0, n_intervals=1, interval=2.0)
    cases.append((r, "interval_s 2 differs from 1 of the reports before it"))
    r = bench_report([100, 200], 1796000000.0, n_intervals=1)
    r["histogram"]["count"] = 3
    cases.append((r, "histogram count 3 but its buckets hold 2"))
    r = bench_report([100, 200], 1796000000.0, n_intervals=1)
    r["histogram"]["buckets"].append([99999, 1])
    cases.append((r, "histogram bucket index 99999 is outside the layout"))
    r = bench_report([100, 200], 1796000000.0, n_intervals=1)
    r["format"] = "wrk"
    cases.append((r, 'format "wrk", expected "ringfetch-bench/1"'))
    r = bench_report([100, 200], 1796000000.0, n_intervals=1)
    del r["start_epoch_s"]
    cases.append((r, "no \"start_epoch_s\""))
    for i, (report, msg) in enumerate(cases):
        bad = write_json(os.path.join(d, f"bad{i}.json"), report)
        rc, out, err = run(ctx, ["bench-merge", good, bad, "-o", "merged.json"])
        assert rc == 1 and f"{bad}: {msg}" in err, (i, rc, err)
        assert leftovers(d, "merged.json") == []
    with open(os.path.join(d, "cut.json"), "w") as f:
        f.write('{"format":"ringfetch-bench/1","requests":')
    rc, _, err = run(ctx, ["bench-merge", good, "cut.json"])
    assert rc == 1 and "cut.json: not JSON: byte 41: unexpected end" in err, err
    rc, _, err = run(ctx, ["bench-merge"])
    assert rc == 2 and "no report given" in err, err
    rc, _, err = run(ctx, ["report", "missing.json", "-o", "r.html"])
    assert rc == 1 and "missing.json: cannot open" in err, err
    rc, _, err = run(ctx, ["report", good])
    assert rc == 2 and "-o OUT.html is required" in err, err


# ------------------------------------------------------------------ the HTML page


class Page(html.parser.HTMLParser):
    """The tags, attributes and text of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.by_id, self._stack = [], [], {}, []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if dict(attrs).get("id"):
            self.by_id[dict(attrs)["id"]] = len(self.tags) - 1

    def handle_data(self, data):
        self.text.append(data)


def parse_page(text):
    p = Page()
    p.feed(text)
    p.close()
    return p


def svg_lines(text, svg_id):
    """The polylines (class, point count) inside <svg id=svg_id>."""
    start = text.index(f'<svg id="{svg_id}"')
    block = text[start:text.index("</svg>", start)]
    p = parse_page(block)
    return [(a.get("class"), len(a.get("points", "").split())) for t, a in p.tags
            if t == "polyline"]


def assert_self_contained(text):
    """Nothing in the page makes the browser fetch: no src/href, no CSS url(), and every
    "://" in the file is inside text (a run's URL), never in markup."""
    p = parse_page(text)
    for tag, attrs in p.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base", "image", "use",
                           "source", "audio", "video", "form"), tag
        for name, value in attrs.items():
            assert name not in ("src", "href", "xlink:href", "action", "srcset"), (tag, name)
            assert "://" not in (value or "") and not (value or "").startswith("//"), (tag, name)
    assert "url(" not in text and "@import" not in text
    scripts = [a for t, a in p.tags if t == "script"]
    assert len(scripts) == 1 and not scripts[0], scripts
    in_text = sum(t.count("://") for t in p.text)
    assert text.count("://") == in_text, (text.count("://"), in_text)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  # a request that tries to leave the machine fails at name resolution
                  "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium(ctx, page, extra=()):
    profile = os.path.join(ctx.tmpdir, "profile-" + os.path.basename(page))
    os.makedirs(profile)
    r = subprocess.run([CHROMIUM] + CHROMIUM_FLAGS + [f"--user-data-dir={profile}"] +
                       list(extra) + ["--dump-dom", "file://" + page],
                       capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout, r.stderr


# Put first in <head> of a copy of the page: records script errors and every resource the
# page loaded, then clicks the first legend entry, and writes what it saw into the DOM.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
window.addEventListener('load', function () {
  var line = document.querySelector('svg#percentiles .run-0');
  var shown = line ? getComputedStyle(line).display : 'missing';
  var key = document.querySelector('#legend .key');
  if (key) key.click();
  var hidden = line ? getComputedStyle(line).display : 'missing';
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    errors: window.__errors,
    resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
    svgs: Array.prototype.map.call(document.querySelectorAll('svg'), function (s) {
      return s.id + ':' + s.querySelectorAll('polyline').length; }),
    title: document.title, shown: shown, hidden: hidden,
    width: document.getElementById('percentiles').getBoundingClientRect().width});
  document.body.appendChild(out);
});
</script>"""


def test_report_page_in_browser(ctx):
    d = ctx.tmpdir
    samples = generator_samples()
    nasty = 'http://127.0.0.1:8080/a?x=<b>&y="1"'
    runs = [bench_report(samples[0], 1796000000.0, url=nasty,
                         config_extra={"header": "</script><script>alert(1)</script>"}),
            bench_report(samples[1], 1796000000.2, url=nasty, seed=3)]
    names = [write_json(os.path.join(d, f"run{i}.json"), r) for i, r in enumerate(runs)]
    rc, _, err = run(ctx, ["bench-merge"] + names + ["-o", "merged.json", "--html",
                                                     "merged.html"])
    assert rc == 0, err
    title = 'before <i>&amp; "after"'
    rc, _, err = run(ctx, ["report", "run0.json", "run1.json", "merged.json", "-o", "cmp.html",
                           "--title", title])
    assert rc == 0 and err == "", err
    with open(os.path.join(d, "cmp.html"), encoding="utf-8") as f:
        text = f.read()
    with open(os.path.join(d, "merged.html"), encoding="utf-8") as f:
        merged_text = f.read()

    # the page as a file: self-contained, escaped, one line per run in each chart
    for t in (text, merged_text):
        assert_self_contained(t)
    assert "<b>" not in text and "&lt;b&gt;&amp;y=&quot;1&quot;" in text
    assert "alert(1)</script>" not in text
    assert "<title>before &lt;i&gt;&amp;amp; &quot;after&quot;</title>" in text
    pct = svg_lines(text, "percentiles")
    assert [c for c, _ in pct] == ["run-0", "run-1", "run-2"], pct
    assert all(n > 100 for _, n in pct), pct
    assert [c for c, _ in svg_lines(text, "rps")] == ["run-0", "run-1", "run-2"]
    # p50 and p99 per run
    assert len(svg_lines(text, "latency")) == 6 and len(svg_lines(merged_text, "latency")) == 2
    for label in (">0%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<", ">99.999%<",
                  "latency (ms)", "requests per second", "time since the measured start (s)"):
        assert label in text, label
    assert "p99_us_max" in merged_text and "(2 generators)" in text
    page = parse_page(text)
    for table in ("summary", "config"):
        assert table in page.by_id, table
    rows = "".join(page.text)
    for v in (percentile(sorted(samples[0]), 99), percentile(sorted(samples[1]), 99.9)):
        assert f"{v}" in rows

    if not os.access(CHROMIUM, os.X_OK):
        ctx.skip(f"{CHROMIUM} is not installed (scripts/setup installs Debian's chromium); "
                 "the static checks passed")
    probe_page = os.path.join(d, "probe.html")
    with open(probe_page, "w", encoding="utf-8") as f:
        f.write(text.replace("<head>", "<head>" + PROBE, 1))
    dom, _ = chromium(ctx, probe_page)
    p = parse_page(dom)
    assert "probe" in p.by_id, dom[-2000:]
    result = json.loads(dom.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0]
                        .replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert result["errors"] == [], result
    assert result["resources"] == [], result
    assert result["svgs"] == ["percentiles:3", "rps:3", "errors:3", "latency:6"], result
    assert result["title"] == title, result
    assert result["shown"] != "none" and result["hidden"] == "none", result
    assert result["width"] > 300, result

    # the bench-merge page, unmodified, with the browser's console on stderr
    dom, log = chromium(ctx, os.path.join(d, "merged.html"), ["--enable-logging=stderr",
                                                               "--v=0"])
    console = [l for l in log.splitlines() if ":CONSOLE" in l]
    assert console == [], console
    assert '<svg id="percentiles"' in dom and '<svg id="latency"' in dom, dom[:2000]


test_report_page_in_browser.timeout = 180


def probe(ctx, page_path):
    """Load a copy of the page with PROBE in its head; what the probe saw."""
    with open(page_path, encoding="utf-8") as f:
        text = f.read()
    probe_page = page_path + ".probe.html"
    with open(probe_page, "w", encoding="utf-8") as f:
        f.write(text.replace("<head>", "<head>" + PROBE, 1))
    dom, _ = chromium(ctx, probe_page)
    return text, json.loads(dom.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0]
                            .replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def test_bench_html_of_a_real_run_in_browser(ctx):
    """bench --html of a 30 s run with --interval 1s, and `report` comparing it with a
    second run: both pages render in a real browser with no script error, no resource
    loaded, and one point per interval."""
    if not os.access(CHROMIUM, os.X_OK):
        ctx.skip(f"{CHROMIUM} is not installed (scripts/setup installs Debian's chromium)")
    d = ctx.tmpdir
    url = ctx.nginx.url("/")
    page = os.path.join(d, "run.html")
    rc, out, err = ctx.bench(["-c", "8", "-d", "30s", "--interval", "1s", "-R", "2000",
                              "--html", page, "--json", url], timeout=90)
    assert rc == 0, err
    report = json.loads(out)
    assert len(report["intervals"]) == 30, report["intervals"]
    assert report["rate"]["achieved"] > 1900, report["rate"]
    # one interval line per second on stderr while it ran
    assert len([l for l in err.splitlines() if "requests" in l and "p99" in l]) == 30, err
    with open(os.path.join(d, "a.json"), "w") as f:
        f.write(out)
    rc, out2, err = ctx.bench(["-c", "4", "-d", "3s", "--interval", "1s", "--json", url])
    assert rc == 0, err
    with open(os.path.join(d, "b.json"), "w") as f:
        f.write(out2)
    rc, _, err = run(ctx, ["report", "a.json", "b.json", "-o", "cmp.html"])
    assert rc == 0, err

    text, seen = probe(ctx, page)
    assert_self_contained(text)
    assert seen["errors"] == [] and seen["resources"] == [], seen
    assert seen["svgs"] == ["percentiles:1", "rps:1", "errors:1", "latency:2"], seen
    assert max(n for _, n in svg_lines(text, "rps")) == 30, svg_lines(text, "rps")
    text, seen = probe(ctx, os.path.join(d, "cmp.html"))
    assert_self_contained(text)
    assert seen["errors"] == [] and seen["resources"] == [], seen
    assert seen["svgs"] == ["percentiles:2", "rps:2", "errors:2", "latency:4"], seen


test_bench_html_of_a_real_run_in_browser.timeout = 240
