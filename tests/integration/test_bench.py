"""ringfetch bench against a real nginx and the misbehaving badserver: counts, errors, reports."""
import json
import os
import signal
import subprocess
import time

import harness



def test_exact_request_count(ctx):
    j = ctx.bench_json(["-c", "8", "-n", "2000", ctx.nginx.url("/")])
    assert j["requests"] == 2000, j
    assert j["status"] == {"200": 2000}, j
    assert sum(j["errors"].values()) == 0, j
    assert j["established"] == 8 and j["connections"] == 8, j
    assert j["bytes"] >= 2000 * 12, j
    lat = j["latency_us"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"]


def test_duration_and_schema(ctx):
    t0 = time.monotonic()
    j = ctx.bench_json(["-c", "16", "-t", "2", "-d", "1s", ctx.nginx.url("/")])
    assert time.monotonic() - t0 < 5
    assert 0.9 < j["duration_s"] < 2.0, j
    for key in ("requests", "duration_s", "rps", "bytes", "errors", "status", "latency_us",
                "connections", "threads"):
        assert key in j, key
    assert j["threads"] == 2 and j["requests"] > 100, j
    assert abs(j["rps"] - j["requests"] / j["duration_s"]) < 1, j
    # nginx closes a connection after 1,000 requests (keepalive_requests): one may be
    # reconnecting when the run ends
    assert j["peak_open"] == 16 and 16 - j["open_at_end"] <= min(2, j["connects"] - 16), j


def test_text_report_like_wrk(ctx):
    rc, out, err = ctx.bench(["-c", "4", "-n", "500", "--latency", ctx.nginx.url("/")])
    assert rc == 0, err
    for text in ("Running 500 requests @", "4 connections", "Latency", "99.9%",
                 "500 requests in", "Requests/sec:", "Transfer/sec:", "Status: 200 x 500",
                 "Errors: connect 0, read 0, write 0, timeout 0"):
        assert text in out, (text, out)


def test_pipelining(ctx):
    j = ctx.bench_json(["-c", "4", "-p", "8", "-n", "4000", ctx.nginx.url("/")])
    assert j["requests"] == 4000 and j["status"] == {"200": 4000}, j
    assert sum(j["errors"].values()) == 0, j
    # The test nginx ends a connection after 1000 requests; what was pipelined behind
    # the last one goes out again on the next connection.
    assert 4 <= j["established"] <= 8, j


def test_new_connection_per_request(ctx):
    j = ctx.bench_json(["-c", "4", "--no-keepalive", "-n", "300", ctx.nginx.url("/")])
    assert j["requests"] == 300, j
    assert j["connects"] >= 300 and j["established"] >= 300, j
    assert sum(j["errors"].values()) == 0, j


def test_reqs_per_conn(ctx):
    j = ctx.bench_json(["-c", "2", "--reqs-per-conn", "10", "-n", "200", ctx.nginx.url("/")])
    assert j["requests"] == 200, j
    assert 20 <= j["connects"] <= 22, j


def test_non_2xx_counted(ctx):
    j = ctx.bench_json(["-c", "2", "-n", "100", ctx.nginx.url("/status/404")])
    assert j["status"] == {"404": 100} and j["errors"]["non_2xx_3xx"] == 100, j


def test_timeouts_counted_not_dropped(ctx):
    j = ctx.bench_json(["-c", "4", "-d", "2s", "--timeout", "500ms", ctx.bad.url("hang")])
    assert j["requests"] == 0, j
    assert j["errors"]["timeout"] >= 4, j
    assert j["latency_us"]["max"] >= 500000, j  # the timed-out requests are in the latencies


def test_refused_is_never_silent(ctx):
    port = ctx.refused_port()
    rc, out, err = ctx.bench(["-c", "4", "-d", "1s", f"http://127.0.0.1:{port}/"])
    assert rc == 0, err
    assert "0 established" in out, out
    connect_errors = int(out.split("Errors: connect ")[1].split(",")[0])
    assert connect_errors >= 4, out


def test_request_count_against_a_dead_server_ends(ctx):
    """-n alone cannot be reached when nothing connects: the run ends after the timeouts."""
    port = ctx.refused_port()
    t0 = time.monotonic()
    j = ctx.bench_json(["-c", "2", "-n", "50", "--timeout", "1s", "--connect-timeout", "1s",
                         f"http://127.0.0.1:{port}/"], timeout=20)
    assert time.monotonic() - t0 < 5
    assert j["requests"] == 0 and j["established"] == 0 and j["errors"]["connect"] > 0, j


def test_hostile_servers_give_read_errors(ctx):
    for mode in ("reset", "garbage", "badchunk", "close"):
        j = ctx.bench_json(["-c", "2", "-d", "1s", "--timeout", "1s", ctx.bad.url(mode)])
        assert j["errors"]["read"] > 0, (mode, j)
        assert j["status"].get("200", 0) == 0 or mode != "garbage", (mode, j)


def test_rate_is_held(ctx):
    j = ctx.bench_json(["-c", "8", "-d", "2s", "-R", "2000", ctx.nginx.url("/")])
    assert abs(j["rate"]["achieved"] - 2000) / 2000 < 0.05, j
    assert j["requests"] >= 3800, j


def test_hdr_log(ctx):
    path = os.path.join(ctx.tmpdir, "lat.hgrm")
    rc, out, err = ctx.bench(["-c", "4", "-n", "2000", "--hdr-log", path, ctx.nginx.url("/")])
    assert rc == 0, err
    rows = []
    with open(path) as f:
        text = f.read()
    assert "Value     Percentile TotalCount 1/(1-Percentile)" in text, text[:300]
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#") and parts[0][0].isdigit():
            rows.append((float(parts[0]), float(parts[1]), int(parts[2])))
    assert rows and rows[-1][1] == 1.0 and rows[-1][2] == 2000, rows[-3:]
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(rows, rows[1:]))
    assert "#[Max     =" in text and "Total count    =" in text


def test_sigint_still_reports(ctx):
    proc = subprocess.Popen([ctx.ringfetch, "bench", "-c", "8", "-d", "30s", "--json",
                             ctx.nginx.url("/")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    j = json.loads(out)
    assert 0.5 < j["duration_s"] < 5 and j["requests"] > 0, j


def test_usage_errors(ctx):
    rc, out, err = ctx.bench([])
    assert rc == 2 and "give exactly one URL" in err, err
    rc, out, err = ctx.bench(["-c", "0", ctx.nginx.url("/")])
    assert rc == 2 and "bad --connections: 0" in err, err
    rc, out, err = ctx.bench(["--frobnicate", ctx.nginx.url("/")])
    assert rc == 2 and "--frobnicate" in err, err
    rc, out, err = ctx.bench(["-d", "1s", "not a url"])
    assert rc == 1 and "invalid_url" in err, err
    with harness.DnsServer({}) as dns:  # NXDOMAIN for everything, on loopback
        rc, out, err = ctx.bench(["-d", "1s", "--dns-server", dns.server,
                                   "http://name.invalid/"])
    assert rc == 1 and "dns" in err, err
    rc, out, err = ctx.bench(["-p", "4", "--no-keepalive", ctx.nginx.url("/")])
    assert rc == 2, err


def test_source_addrs(ctx):
    j = ctx.bench_json(["-c", "6", "-n", "600", "--source-addrs", "127.0.0.2-127.0.0.4",
                         ctx.nginx.url("/")])
    assert j["requests"] == 600 and j["established"] == 6, j
    assert sum(j["errors"].values()) == 0, j
    rc, out, err = ctx.bench(["-n", "10", "--source-addrs", "127.0.0.9-127.0.0.2",
                               ctx.nginx.url("/")])
    assert rc == 2 and "bad --source-addrs" in err, err


def test_targets_round_robin(ctx):
    body = os.path.join(ctx.tmpdir, "body.txt")
    with open(body, "w") as f:
        f.write("hello")
    path = os.path.join(ctx.tmpdir, "targets.txt")
    with open(path, "w") as f:
        f.write(f"# four requests to one origin\n"
                f"GET {ctx.nginx.url('/')}\n"
                f"HEAD {ctx.nginx.url('/static/64k.bin')}\n"
                f"\n"
                f"POST {ctx.nginx.url('/status/404')} @{body} | X-Test: 1 | Accept: text/plain\n"
                f"GET {ctx.nginx.url('/redirect')}\n")
    for pipeline in ("1", "4"):
        j = ctx.bench_json(["-c", "4", "-p", pipeline, "-n", "400", "--targets", path])
        assert j["targets"] == 4 and j["requests"] == 400, j
        # Each connection cycles through the four; which connection takes the last of the
        # 400 varies, so a target's share may be off by a few. HEAD of a 64 KiB file has
        # no body: were it read as one, the stream would fall out of step and fail.
        st = j["status"]
        assert set(st) == {"200", "301", "404"}, j
        assert abs(st["200"] - 200) <= 8 and abs(st["301"] - 100) <= 8, j
        assert abs(st["404"] - 100) <= 8 and j["errors"]["non_2xx_3xx"] == st["404"], j
        assert j["errors"]["read"] == 0 and j["errors"]["timeout"] == 0, j


def test_targets_file_errors(ctx):
    path = os.path.join(ctx.tmpdir, "bad.txt")
    for text, needle in [("GET\n", "line 1: expected"),
                         ("# nothing\n\n", "no requests"),
                         (f"GET {ctx.nginx.url('/')} @/nonexistent/body\n", "cannot read"),
                         (f"GET {ctx.nginx.url('/')} | no colon\n", "bad header"),
                         (f"GE(T {ctx.nginx.url('/')}\n", "bad method"),
                         (f"GET {ctx.nginx.url('/')}\x01\n", "control or non-ASCII"),
                         (f"GET {ctx.nginx.url('/')}\0x\n", "NUL byte"),
                         (f"GET {ctx.nginx.url('/')}\nGET http://127.0.0.1:1/\n",
                          "same scheme, host and port")]:
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = ctx.bench(["-n", "4", "--targets", path])
        assert rc in (1, 2) and needle in err, (text, rc, err)
