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
    assert f"missing: input line 18 (shard 2/4 by (L-1) mod 4: {paths[1]})" in err, err
    assert leftovers(ctx.tmpdir, "out.jsonl") == [], os.listdir(ctx.tmpdir)
    # with the input: the exact line and the shard file that should have had it
    rc, _, err = run(ctx, ["merge", "-o", "out.jsonl", "--input", inp] + paths)
    assert rc == 1, err
    assert (f"missing: index {gone['index']}, {inp} line 18 (shard 2/4 by (L-1) mod 4: "
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
    assert f"{inp} line {last} (shard {k + 1}/4" in err, err


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
    with open(os.path.join(d, "stderr"), "w+") as errf:
        proc = subprocess.Popen([ctx.ringfetch, "merge", "-o", out, "--input", inp] + paths,
                                stdout=subprocess.DEVNULL, stderr=errf)
        # wait4 gives this child's own rusage: ru_maxrss is its peak RSS in KiB
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read()
    assert proc.returncode == 0, err
    got = hashlib.sha256()
    with open(out, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            got.update(block)
    assert got.hexdigest() == digest.hexdigest()
    print(f"merge of {n_rows} rows in {n_shards} shards: peak RSS {ru.ru_maxrss} KiB")
    assert ru.ru_maxrss < 32 * 1024, f"peak RSS {ru.ru_maxrss} KiB"
    for p in paths + [out, inp]:
        os.unlink(p)


test_merge_memory.timeout = 240
