"""ringfetch fetch --resume FILE -o FILE: the rows a crashed run left are kept, a torn last
row is cut off, and the run goes on after the last complete row, in order, so that after
kill -9 at any moment every request line ends up with exactly one row."""
import csv
import io
import json
import os
import random
import signal
import subprocess
import time


def write_input(ctx, name, lines):
    path = os.path.join(ctx.tmpdir, name)
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    return path


def fetch_to(ctx, inp, out, *extra, resume=True):
    args = [ctx.ringfetch, "fetch", "-q", "-i", inp, "-o", out] + list(extra)
    if resume:
        args += ["--resume", out]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f]


def csv_dicts(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def key(r):
    """What two runs of one input agree on, whatever the timing."""
    return (int(r["index"]), int(r["line"]), r["url"], str(r["status"] or ""),
            r["error"] or "")


def small_input(ctx):
    port = ctx.nginx.ports[0]
    lines = []
    for i in range(60):
        lines.append(f"http://127.0.0.1:{port}/?r={i}" if i % 9 else "# comment")
        if i % 13 == 5:
            lines.append("")
    return write_input(ctx, "small.txt", lines)


def test_torn_row_cut_and_run_continued(ctx):
    """An earlier run's first 20 rows and half of the 21st: --resume keeps the 20, cuts the
    half row and writes the rest; the file then equals an uninterrupted run's. In CSV the
    cut is inside a quoted body holding a newline (a record is not a line)."""
    inp = small_input(ctx)
    for fmt, extra in (("jsonl", []), ("csv", ["--format", "csv", "--keep-body", "1k"])):
        full = os.path.join(ctx.tmpdir, f"full.{fmt}")
        r = fetch_to(ctx, inp, full, *extra, resume=False)
        assert r.returncode == 0, r.stderr
        with open(full, "rb") as f:
            data = f.read()
        if fmt == "jsonl":
            ref = jsonl(full)
            rows = data.split(b"\n")
            cut = b"".join(l + b"\n" for l in rows[:20]) + rows[20][:40]
        else:
            ref = csv_dicts(full)
            recs = data.split(b'world\n"\n')  # each row's body "hello world\n" ends a record
            assert len(recs) == len(ref) + 1, len(recs)
            head = b'world\n"\n'.join(recs[:20]) + b'world\n"\n'  # header + 20 rows
            cut = head + recs[20] + b"world\n"  # inside the 21st row's quoted body
        part = os.path.join(ctx.tmpdir, f"part.{fmt}")
        with open(part, "wb") as f:
            f.write(cut)
        r = subprocess.run([ctx.ringfetch, "fetch", "-i", inp, "-o", part, "--resume", part]
                           + extra, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        last = ref[19]
        assert (f"ringfetch fetch: resuming {part} after input line {last['line']} (index "
                f"{last['index']}); its torn last row was cut off\n") in r.stderr, r.stderr
        got = jsonl(part) if fmt == "jsonl" else csv_dicts(part)
        assert [key(x) for x in got] == [key(x) for x in ref], fmt
        assert "results in" in r.stderr and r.stderr.count("\n") >= 4, r.stderr


def test_resume_of_a_finished_or_missing_file(ctx):
    inp = small_input(ctx)
    out = os.path.join(ctx.tmpdir, "rows.csv")
    r = fetch_to(ctx, inp, out, "--format", "csv")  # no file yet: a fresh run
    assert r.returncode == 0, r.stderr
    ref = csv_dicts(out)
    assert [int(x["index"]) for x in ref] == list(range(len(ref))) and len(ref) > 50
    r = fetch_to(ctx, inp, out, "--format", "csv")  # all done: nothing to add
    assert r.returncode == 0, r.stderr
    assert [key(x) for x in csv_dicts(out)] == [key(x) for x in ref]
    with open(out, "w") as f:
        f.write("index,url,sta")  # a run killed while writing its header
    r = fetch_to(ctx, inp, out, "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert [key(x) for x in csv_dicts(out)] == [key(x) for x in ref]


def test_resume_refuses_what_does_not_match(ctx):
    inp = small_input(ctx)
    out = os.path.join(ctx.tmpdir, "rows.jsonl")
    assert fetch_to(ctx, inp, out, resume=False).returncode == 0
    rows = jsonl(out)
    with open(out, "w") as f:
        f.write("".join(json.dumps(x) + "\n" for x in rows[:10]))
    before = open(out).read()
    # another input: the 10th row's line is a comment there
    other = write_input(ctx, "other.txt", ["# x"] * 100)
    r = fetch_to(ctx, other, out)
    assert r.returncode == 2, r.stderr
    assert (f"ringfetch fetch: --resume: the output's last row is input line "
            f"{rows[9]['line']} with index 9, but that line makes no request: not the input "
            "that output was made from\n") in r.stderr, r.stderr
    # a shorter input
    short = write_input(ctx, "short.txt", ["http://127.0.0.1:1/"] * 3)
    r = fetch_to(ctx, short, out)
    assert r.returncode == 2 and "but the input has 3 lines" in r.stderr, r.stderr
    assert open(out).read() == before  # nothing written, nothing cut
    # a CSV of other columns; a file that is not rows; --resume without -o
    csvf = os.path.join(ctx.tmpdir, "rows.csv")
    assert fetch_to(ctx, inp, csvf, "--format", "csv", resume=False).returncode == 0
    r = fetch_to(ctx, inp, csvf, "--format", "csv", "--keep-body", "10")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"ringfetch fetch: --resume {csvf}: its CSV header is not this "
                               "run's"), r.stderr
    r = fetch_to(ctx, inp, csvf)  # JSONL rows wanted, a CSV there
    assert r.returncode == 2 and "its last row is not JSON" in r.stderr, r.stderr
    r = subprocess.run([ctx.ringfetch, "fetch", "-i", inp, "--resume", out],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--resume FILE goes with -o FILE" in r.stderr, r.stderr


def check_prefix(path, want):
    """The file holds whole rows that are a prefix of want (keys), and at most one torn
    row after them; the number of whole rows."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    whole = [json.loads(l) for l in lines[:-1]]
    assert [key(x) for x in whole] == want[:len(whole)], "rows doubled, missing or disordered"
    return len(whole)


def test_kill9_at_random_moments(ctx):
    """200,000 lines (200, 404, refused; comments and blanks between) on four nginx ports.
    The run is killed with SIGKILL at 10 random moments and resumed each time; the file
    ends with one row per request line, in order, with the statuses of an uninterrupted
    run, and after every kill it held whole rows of that run plus at most one torn row."""
    ports, refused = ctx.nginx.ports, ctx.refused_port()
    lines = []
    for i in range(200000):
        k = i % 50
        if k == 7:
            lines.append(f"http://127.0.0.1:{refused}/?k={i}")
        elif k == 8:
            lines.append(f"http://127.0.0.1:{ports[i % 4]}/status/404?k={i}")
        elif k == 9:
            lines.append("# a comment")
        elif k == 10:
            lines.append("   ")
        else:
            lines.append(f"http://127.0.0.1:{ports[i % 4]}/?k={i}")
    inp = write_input(ctx, "big.txt", lines)
    ref_path = os.path.join(ctx.tmpdir, "ref.jsonl")
    r = fetch_to(ctx, inp, ref_path, "-c", "200", resume=False)
    assert r.returncode == 0, r.stderr
    ref = [key(x) for x in jsonl(ref_path)]
    assert len(ref) == 200000 - 2 * 4000, len(ref)
    assert {x[3:] for x in ref} == {("200", ""), ("404", ""), ("", "refused")}, set(ref[:60])

    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    out = os.path.join(ctx.tmpdir, "out.jsonl")
    kills = []
    for n in range(10):
        p = subprocess.Popen([ctx.ringfetch, "fetch", "-q", "-c", "200", "-i", inp, "-o", out,
                              "--resume", out], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        # About 130,000 rows a second here: short enough that the later runs, with less
        # left to do, are still killed mid-run.
        wait = rnd.uniform(0.02, 0.25)
        time.sleep(wait)  # the moment of the kill is what this test varies
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        err = p.stderr.read().decode()
        p.stderr.close()
        assert p.returncode in (-signal.SIGKILL, 0), (seed, n, p.returncode, err)
        kills.append((round(wait, 3), check_prefix(out, ref)))
    print(f"seed {seed}; (kill after s, whole rows then): {kills}")
    interrupted = sum(1 for _, rows in kills if rows < len(ref))
    assert interrupted >= 8, f"only {interrupted} of 10 kills came before the run ended"
    r = fetch_to(ctx, inp, out, "-c", "200")
    assert r.returncode == 0, (seed, r.stderr)
    got = [key(x) for x in jsonl(out)]
    assert len(got) == len(ref) and len({x[1] for x in got}) == len(got), (seed, len(got))
    assert got == ref, seed


test_kill9_at_random_moments.timeout = 150
