"""ringfetch fetch --shard K/N (and the shard of a Kubernetes Indexed Job or a Slurm array
from the environment): each shard takes input lines L with (L - 1) mod N = K, rows keep the
global `line` and `index`, and `ringfetch merge --input` joins the shards into exactly the
rows of one unsharded run."""
import csv
import io
import json
import os
import subprocess

SHARD_ENV = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
             "SLURM_ARRAY_TASK_MIN")


def shard_input(ctx):
    """A BOM, CRLF, comments, blank lines and an invalid line among the URLs; a BOM also at
    the start of two lines inside (files joined with cat): fetch and merge --input both
    drop a BOM at the start of any line."""
    ports = ctx.nginx.ports
    lines = ["\ufeff" + f"http://127.0.0.1:{ports[0]}/?s=0"]
    for i in range(1, 301):
        if i % 17 == 3:
            lines.append("# comment")
        elif i % 23 == 4:
            lines.append("  ")
        elif i % 29 == 5:
            lines.append("not a url")
        elif i in (100, 200):
            lines.append("\ufeff" + ("# joined file" if i == 100 else
                                     f"http://127.0.0.1:{ports[0]}/?bom={i}"))
        else:
            lines.append(f"http://127.0.0.1:{ports[i % 4]}/?s={i}\r")
    path = os.path.join(ctx.tmpdir, "urls.txt")
    with open(path, "w", newline="") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run(ctx, args, env=None):
    e = {k: v for k, v in os.environ.items() if k not in SHARD_ENV}
    e.update(env or {})
    return subprocess.run([ctx.ringfetch, "fetch", "-q"] + args, capture_output=True,
                          text=True, timeout=60, env=e)


def parse(text, fmt):
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return [json.loads(l) for l in text.splitlines()]


def key(r):
    return (int(r["index"]), int(r["line"]), r["url"], str(r["status"] or ""),
            r["error"] or "")


def test_shards_merge_into_one_run(ctx):
    inp = shard_input(ctx)
    for fmt in ("jsonl", "csv"):
        r = run(ctx, ["--format", fmt, "-i", inp])
        assert r.returncode == 0, r.stderr
        ref = [key(x) for x in parse(r.stdout, fmt)]
        assert len(ref) == 301 - 18 - 13 - 1, len(ref)  # all but comments and blanks
        parts = []
        for k in range(3):
            part = os.path.join(ctx.tmpdir, f"part{k}.{fmt}")
            r = run(ctx, ["--format", fmt, "--shard", f"{k}/3", "-i", inp, "-o", part])
            assert r.returncode == 0, r.stderr
            with open(part) as f:
                got = [key(x) for x in parse(f.read(), fmt)]
            assert got == [x for x in ref if (x[1] - 1) % 3 == k], (fmt, k)
            parts.append(part)
        merged = os.path.join(ctx.tmpdir, f"all.{fmt}")
        m = subprocess.run([ctx.ringfetch, "merge", "-o", merged, "--input", inp] + parts,
                           capture_output=True, text=True, timeout=60)
        assert m.returncode == 0, m.stderr
        with open(merged) as f:
            assert [key(x) for x in parse(f.read(), fmt)] == ref, fmt


def test_shard_from_the_environment(ctx):
    inp = shard_input(ctx)
    r = run(ctx, ["-i", inp])
    ref = [key(x) for x in parse(r.stdout, "jsonl")]
    cases = [({"JOB_COMPLETION_INDEX": "1"}, ["--shards", "3"], 1, 3),
             ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1",
               "SLURM_ARRAY_TASK_COUNT": "4"}, [], 2, 4),
             ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "9"}, ["--shards", "2"],
              0, 2),
             ({"JOB_COMPLETION_INDEX": "2"}, [], 0, 1),  # no --shards: the whole input
             ({"SLURM_ARRAY_TASK_ID": "1"}, [], 0, 1)]  # no count: the whole input
    for env, args, k, n in cases:
        r = run(ctx, args + ["-i", inp], env)
        assert r.returncode == 0, (env, r.stderr)
        assert [key(x) for x in parse(r.stdout, "jsonl")] == [
            x for x in ref if (x[1] - 1) % n == k], env
    for env, args, msg in (
            ({"JOB_COMPLETION_INDEX": "3"}, ["--shards", "3"],
             "JOB_COMPLETION_INDEX: bad value '3' (a shard number from 0 to 2 for --shards 3)"),
            ({}, ["--shards", "3"], "--shards N takes the shard number from "
                                    "JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID"),
            ({}, ["--shard", "3/3"], "--shard: bad value '3/3' (K/N with 0 <= K < N"),
            ({}, ["--shard", "1/0"], "--shard: bad value '1/0'"),
            ({}, ["--shard", "1/3", "--shards", "3"],
             "--shard K/N and --shards N: give one of them")):
        r = run(ctx, args + ["-i", inp], env)
        assert (r.returncode, r.stdout) == (2, ""), (args, r)
        assert r.stderr.startswith("ringfetch fetch: " + msg), r.stderr


def test_shard_resumed_then_merged(ctx):
    """A shard that stopped early (its file cut after 20 rows) is resumed and merges."""
    inp = shard_input(ctx)
    ref = [key(x) for x in parse(run(ctx, ["-i", inp]).stdout, "jsonl")]
    parts = [os.path.join(ctx.tmpdir, f"p{k}.jsonl") for k in range(2)]
    for k, part in enumerate(parts):
        assert run(ctx, ["--shard", f"{k}/2", "-i", inp, "-o", part]).returncode == 0
    with open(parts[1]) as f:
        kept = f.readlines()[:20]
    with open(parts[1], "w") as f:
        f.write("".join(kept) + kept[-1][:30])
    r = run(ctx, ["--shard", "0/2", "-i", inp, "-o", parts[1], "--resume", parts[1]])
    assert r.returncode == 2 and "but that line is shard 1/2's, not this one's" in r.stderr, r
    r = run(ctx, ["--shard", "1/2", "-i", inp, "-o", parts[1], "--resume", parts[1]])
    assert r.returncode == 0, r.stderr
    merged = os.path.join(ctx.tmpdir, "all.jsonl")
    m = subprocess.run([ctx.ringfetch, "merge", "-o", merged, "--input", inp] + parts,
                       capture_output=True, text=True, timeout=60)
    assert m.returncode == 0, m.stderr
    with open(merged) as f:
        assert [key(x) for x in parse(f.read(), "jsonl")] == ref
