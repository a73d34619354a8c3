"""ringfetch fetch on long real-world runs: -L (redirects, their chain in the row), retries
with backoff and Retry-After, --retry-on, per-host concurrency and rate limits. Against
the redirect world (nginx) and badserver's flaky and count modes."""
import csv
import io
import json
import subprocess
import time

import harness


def world(ctx):
    return ctx.server("nginx-redirects", lambda: harness.redirect_world(ctx.pki))


def unique(name):
    return f"{name}-{time.monotonic_ns()}"


def test_location_follows_redirects_with_the_chain(ctx):
    w = world(ctx)
    u = w.url("/chain/3")
    rc, rows, err = ctx.fetch(["-q", "-L", u])
    assert rc == 0, err
    r = rows[0]
    assert (r["status"], r["error"], r["redirects"], r["attempts"], r["final_url"]) == (
        200, None, 3, 1, w.url("/chain/0")), r
    assert r["chain"] == [{"url": w.url(f"/chain/{n}"), "status": 302} for n in (3, 2, 1)], r
    assert r["url"] == u and r["bytes"] == len(b"chain end\n"), r
    # CSV: final_url and the chain as JSON text
    p = subprocess.run([ctx.ringfetch, "fetch", "-q", "-L", "--format", "csv", u],
                       capture_output=True, text=True, timeout=30)
    row = next(csv.DictReader(io.StringIO(p.stdout, newline="")))
    assert (row["status"], row["redirects"], row["final_url"]) == ("200", "3", w.url("/chain/0"))
    assert json.loads(row["chain"]) == r["chain"], row
    # Without -L the 302 is the answer
    rc, rows, err = ctx.fetch(["-q", u])
    assert rc == 0, err
    r = rows[0]
    assert (r["status"], r["redirects"], r["location"]) == (302, 0, "/chain/2"), r
    assert "final_url" not in r and "chain" not in r, r


def test_redirect_limits(ctx):
    w = world(ctx)
    rc, rows, err = ctx.fetch(["-q", "-L", "--max-redirs", "2", w.url("/chain/5"),
                               w.url("/loop-a"), w.url("/chain/2")])
    assert rc == 0, err
    got = [(r["status"], r["error"], r["redirects"], r.get("final_url")) for r in rows]
    assert got == [(302, "too_many_redirects", 2, w.url("/chain/3")),
                   (302, "redirect_loop", 1, w.url("/loop-b")),
                   (200, None, 2, w.url("/chain/0"))], rows
    rc, _, err = ctx.fetch(["--max-redirs", "-1", w.url("/")])
    assert rc == 2 and "--max-redirs: bad value '-1' (a whole number from 0 to 1000)" in err, err


def test_retries_honour_retry_after(ctx):
    """429 with Retry-After: 1, then 200: the retry waits the second the server asked for."""
    tag = unique("ra")
    url = ctx.bad.url("flaky", f"/429-then-200?id={tag}&after=1")
    rc, rows, err = ctx.fetch(["-q", "--retries", "2", "--retry-delay", "10ms", url])
    assert rc == 0, err
    r = rows[0]
    assert (r["status"], r["error"], r["attempts"]) == (200, None, 2), r
    assert r["total_ms"] >= 1000, r
    log = ctx.bad.requests(count=2, mode="flaky", id=tag)
    assert [(e["attempt"], e["status"]) for e in log] == [(1, 429), (2, 200)], log
    assert log[1]["t"] - log[0]["t"] >= 1.0, log


def test_retries_backoff_and_retry_on(ctx):
    refused = f"http://127.0.0.1:{ctx.refused_port()}/"
    t1, t2, t3, t4 = (unique(n) for n in ("n2", "n2b", "reset", "on"))
    urls = [ctx.bad.url("flaky", f"/fail-n?id={t1}&n=2&status=503"),
            ctx.bad.url("flaky", f"/reset-once?id={t3}"), refused]
    rc, rows, err = ctx.fetch(["-q", "--retries", "3", "--retry-delay", "20ms"] + urls)
    assert rc == 0, err
    assert [(r["status"], r["error"], r["attempts"]) for r in rows] == [
        (200, None, 3), (200, None, 2), (None, "refused", 4)], rows
    # fewer retries than failures: the last failure is the row
    rc, rows, err = ctx.fetch(["-q", "--retries", "1", "--retry-delay", "20ms",
                               ctx.bad.url("flaky", f"/fail-n?id={t2}&n=2&status=503")])
    assert [(r["status"], r["attempts"]) for r in rows] == [(503, 2)], rows
    # --retry-on without 503: not retried; with it: retried
    rc, rows, err = ctx.fetch(["-q", "--retries", "3", "--retry-on", "500,refused",
                               ctx.bad.url("flaky", f"/fail-n?id={t4}&n=1&status=503"), refused])
    assert [(r["status"], r["error"], r["attempts"]) for r in rows] == [
        (503, None, 1), (None, "refused", 4)], rows
    rc, rows, err = ctx.fetch(["--retry-on", "bogus", refused])
    assert (rc, rows) == (2, []), err
    assert err.startswith("ringfetch fetch: --retry-on: bad value 'bogus' ("), err


def count_log(ctx, hosts, n):
    return [e for h in hosts for e in ctx.bad.requests(count=n, mode="count", host=h)]


def test_per_host_limit(ctx):
    """12 requests of 200 ms over two host names at -c 12 --per-host 2: two at a time per
    host, never more, and every row 200."""
    port = ctx.bad.port("count")
    a, b = unique("a") + ".test", unique("b") + ".test"
    urls = [f"http://{h}:{port}/?delay_ms=200&i={i}" for i in range(6) for h in (a, b)]
    rc, rows, err = ctx.fetch(["-q", "-c", "12", "--per-host", "2",
                               "--resolve", f"{a}:{port}:127.0.0.1",
                               "--resolve", f"{b}:{port}:127.0.0.1"] + urls)
    assert rc == 0, err
    assert [r["status"] for r in rows] == [200] * 12, rows
    log = count_log(ctx, (f"{a}:{port}", f"{b}:{port}"), 6)
    assert len(log) == 12, log
    assert harness.max_overlap_per_host(log) == {f"{a}:{port}": 2, f"{b}:{port}": 2}, log


def test_host_rate(ctx):
    """--host-rate 4: 8 requests to one host start a quarter second apart, 4 in a second,
    so the last starts 1.75 s after the first."""
    port = ctx.bad.port("count")
    h = unique("rate") + ".test"
    urls = [f"http://{h}:{port}/?delay_ms=0&i={i}" for i in range(8)]
    rc, rows, err = ctx.fetch(["-q", "--timeout", "5", "--host-rate", "4",
                               "--resolve", f"{h}:{port}:127.0.0.1"]
                              + urls)
    assert rc == 0, err
    assert [r["status"] for r in rows] == [200] * 8, rows
    log = count_log(ctx, (f"{h}:{port}",), 8)
    starts = sorted(e["start"] for e in log)
    # The server stamps a start when the request is in: a little jitter on the 0.25 s steps
    # (the first request also waited for its connect), hence 0.95 s and the margins.
    assert harness.max_starts_per_window(log, 0.95) == {f"{h}:{port}": 4}, starts
    assert all(b - a >= 0.2 for a, b in zip(starts, starts[1:])), starts
    assert starts[-1] - starts[0] >= 1.75 - 0.05, starts
    rc, _, err = ctx.fetch(["--host-rate", "0", urls[0]])
    assert rc == 2 and "--host-rate: bad value '0' (requests per second above 0" in err, err
