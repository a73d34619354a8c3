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


def test_redirect_methods_bodies_and_credentials(ctx):
    """What nginx saw agrees with the rows: 301/302/303 turn a POST into a GET without its
    body, 307/308 keep both; userinfo credentials go to the same origin, never to another."""
    w = world(ctx)
    tag = unique("m")
    body = "x" * 1000
    urls = [w.url(f"/code/{c}?id={tag}-{c}") for c in (301, 302, 303, 307, 308)]
    rc, rows, err = ctx.fetch(["-q", "-L", "-d", body] + urls)
    assert rc == 0, err
    assert [(r["status"], r["redirects"]) for r in rows] == [(200, 1)] * 5, rows
    for c in (301, 302, 303, 307, 308):
        first, = w.log_entries(contains=f"/code/{c}?id={tag}-{c}", count=1)
        target, = w.log_entries(contains=f"/target?id={tag}-{c}", count=1)
        assert (first["method"], first["status"]) == ("POST", c), first
        if c in (307, 308):
            assert (target["method"], target["body_length"]) == ("POST", 1000), target
        else:
            assert target["method"] == "GET" and not target["body_length"], target
    # credentials: kept for a hop on the same origin, dropped for another origin
    same = w.url(f"/code/302?id={tag}-auth").replace("://", "://u:p@", 1)
    other = w.url(f"/cross-origin/302?id={tag}-auth2").replace("://", "://u:p@", 1)
    rc, rows, err = ctx.fetch(["-q", "-L", same, other])
    assert rc == 0 and [r["status"] for r in rows] == [200, 200], (err, rows)
    assert all("u:p@" not in r["url"] and "u:p@" not in r.get("final_url", "")
               for r in rows), rows
    basic = "Basic dTpw"
    hop, = w.log_entries(contains=f"/target?id={tag}-auth", count=1, port=w.http_port)
    assert hop["authorization"] == basic, hop
    start, = w.log_entries(contains=f"/cross-origin/302?id={tag}-auth2", count=1)
    away, = w.log_entries(contains=f"/target?id={tag}-auth2", count=1)
    assert start["authorization"] == basic and away["authorization"] is None, (start, away)
    assert away["port"] == w.other_port, away


def test_retry_timing(ctx):
    """429 with Retry-After: 1 then 200: attempts 2 in 1.0-1.2 s. --retries 3 against a
    black hole with --timeout 2 ends at 2 s with timeout, not later. A Retry-After past the
    remaining budget is not waited for: the 429 is the row at once."""
    tag = unique("t")
    url = ctx.bad.url("flaky", f"/429-then-200?id={tag}&after=1")
    rc, rows, err = ctx.fetch(["-q", "--retries", "2", url])
    assert rc == 0, err
    r = rows[0]
    assert (r["status"], r["attempts"]) == (200, 2), r
    assert 1000 <= r["total_ms"] <= 1200, r
    hole = harness.Blackhole("127.0.0.3").start()
    try:
        t0 = time.monotonic()
        rc, rows, err = ctx.fetch(["-q", "--retries", "3", "--timeout", "2", hole.url("/")])
        elapsed = time.monotonic() - t0
    finally:
        hole.stop()
    assert rc == 0, err
    assert (rows[0]["status"], rows[0]["error"]) == (None, "timeout"), rows
    assert 1.9 <= elapsed < 2.6 and 1990 <= rows[0]["total_ms"] <= 2100, (elapsed, rows)
    print(f"429 then 200: attempts {r['attempts']}, total_ms {r['total_ms']}; black hole "
          f"--retries 3 --timeout 2: {rows[0]['error']} after {elapsed:.3f} s, total_ms "
          f"{rows[0]['total_ms']}")
    tag = unique("far")
    t0 = time.monotonic()
    rc, rows, err = ctx.fetch(["-q", "--retries", "3", "--timeout", "2",
                               ctx.bad.url("flaky", f"/429-then-200?id={tag}&after=5")])
    assert rc == 0, err
    assert (rows[0]["status"], rows[0]["attempts"]) == (429, 1), rows
    assert time.monotonic() - t0 < 1.0


def test_busy_host_does_not_slow_the_others(ctx):
    """Half the lines to one slow host held to --per-host 4 (and --host-rate 50 in a second
    run), half to other hosts: the busy host never has more than 4 requests at once or 51
    started in a second, and the other hosts' requests finish within 1.2 x the time they
    take in a run without the busy host."""
    port = ctx.bad.port("count")
    busy = unique("busy") + ".test"
    others = [unique(f"o{i}") + ".test" for i in range(8)]
    resolve = []
    for h in [busy] + others:
        resolve += ["--resolve", f"{h}:{port}:127.0.0.1"]
    other_urls = [f"http://{others[i % 8]}:{port}/?delay_ms=50&i={i}" for i in range(200)]
    busy_urls = [f"http://{busy}:{port}/?delay_ms=50&b={i}" for i in range(200)]
    mixed = [u for pair in zip(busy_urls, other_urls) for u in pair]

    def run(urls, extra):
        t0 = time.monotonic()
        rc, rows, err = ctx.fetch(["-q", "-c", "40", "--timeout", "30"] + extra + resolve + urls,
                                  timeout=120)
        assert rc == 0 and all(r["status"] == 200 for r in rows), (err, rows[:5])
        return rows, time.monotonic() - t0

    alone, _ = run(other_urls, ["--per-host", "4"])
    # the others' requests finish (total_ms from admission) as fast with the busy host in
    alone_ms = sorted(r["total_ms"] for r in alone)
    rows, _ = run(mixed, ["--per-host", "4"])
    with_busy = sorted(r["total_ms"] for r in rows if "/?delay_ms=50&i=" in r["url"])
    assert with_busy[len(with_busy) // 2] <= 1.2 * alone_ms[len(alone_ms) // 2] + 10, \
        (alone_ms[len(alone_ms) // 2], with_busy[len(with_busy) // 2])
    log = ctx.bad.requests(count=200, mode="count", host=f"{busy}:{port}")
    overlap = harness.max_overlap_per_host(log)[f"{busy}:{port}"]
    print(f"other hosts' total_ms median: {alone_ms[len(alone_ms) // 2]} alone, "
          f"{with_busy[len(with_busy) // 2]} beside the busy host; busy host at most "
          f"{overlap} at once (--per-host 4)")
    assert overlap == 4, log[:5]
    busy2 = unique("busy2") + ".test"
    urls = [f"http://{busy2}:{port}/?delay_ms=0&r={i}" for i in range(120)]
    rc, rows, err = ctx.fetch(["-q", "-c", "40", "--host-rate", "50", "--resolve",
                               f"{busy2}:{port}:127.0.0.1"] + urls, timeout=60)
    assert rc == 0 and all(r["status"] == 200 for r in rows), err
    log = ctx.bad.requests(count=120, mode="count", host=f"{busy2}:{port}")
    most = harness.max_starts_per_window(log, 1.0)[f"{busy2}:{port}"]
    print(f"--host-rate 50: at most {most} requests started in any 1 s window")
    assert most <= 51, log[:5]


test_busy_host_does_not_slow_the_others.timeout = 150
