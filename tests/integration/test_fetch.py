"""ringfetch fetch against a real nginx and the misbehaving badserver: rows, order, errors."""
import json
import os
import signal
import subprocess
import time

import harness


def ok_row(row, index, url):
    assert row["index"] == index, row
    assert row["url"] == url, row
    assert row["error"] is None, row
    assert row["status"] == 200, row


def test_nginx_basic(ctx):
    urls = [f"http://127.0.0.1:{p}/" for p in ctx.nginx.ports]
    rc, rows, err = ctx.fetch(urls)
    assert rc == 0, err
    assert len(rows) == len(urls)
    for i, (row, url) in enumerate(zip(rows, urls)):
        ok_row(row, i, url)
        assert row["bytes"] == 12, row
        assert row["ip"] == "127.0.0.1", row
        assert row["content_type"] == "text/plain", row
        assert row["total_ms"] >= row["ttfb_ms"] >= row["connect_ms"] >= 0, row
    assert "4 results" in err, err


def test_every_line_one_row_in_order(ctx):
    """Valid, refused, malformed and blank lines: one row per non-blank line, in order,
    with one ring thread and with three sharing the window."""
    refused = ctx.refused_port()
    lines, expect = [], []
    for i in range(3000):
        k = i % 10
        if k == 7:
            lines.append(f"http://127.0.0.1:{refused}/x{i}")
            expect.append(("refused", None))
        elif k == 8:
            lines.append(f"not a url {i}")
            expect.append(("invalid_url", None))
        elif k == 9:
            lines.append("   ")  # blank: no row
        else:
            port = ctx.nginx.ports[i % len(ctx.nginx.ports)]
            lines.append(f"  http://127.0.0.1:{port}/?i={i}  ")
            expect.append((None, 200))
    for threads in ("1", "3"):
        rc, rows, err = ctx.fetch(["-c", "50", "-t", threads, "-i", "-"],
                                  input_text="\n".join(lines) + "\n")
        assert rc == 0, err
        assert len(rows) == len(expect), (len(rows), len(expect))
        nonblank = [l.strip() for l in lines if l.strip()]
        for i, row in enumerate(rows):
            assert row["index"] == i, row
            assert row["url"] == nonblank[i], (row, nonblank[i])
            assert (row["error"], row["status"]) == expect[i], (i, row)
        assert "errors: 600 (invalid_url 300, refused 300)" in err, err


def test_keepalive_reuse(ctx):
    port = ctx.nginx.ports[0]
    urls = [f"http://127.0.0.1:{port}/?n={i}" for i in range(200)]
    rc, rows, err = ctx.fetch(["-c", "4"] + urls)
    assert rc == 0, err
    assert all(r["status"] == 200 for r in rows)
    reused = sum(1 for r in rows if r["connect_ms"] == 0)
    assert reused >= 190, reused  # 4 connections carry 200 requests


def connections_opened(err):
    for line in err.splitlines():
        if "connections opened" in line:
            return int(line.split(", ")[-1].split()[0])
    raise AssertionError(f"no connection count in {err!r}")


def test_keepalive_pool_survives_refused_hosts(ctx):
    """Many origins, every slot in use, some lines refused: connections stay few.

    Spare connection slots keep one refused host from making the pool close another
    origin's idle connection per request (which then cascades through all origins)."""
    refused = ctx.refused_port()
    ports = ctx.nginx.ports
    urls = []
    for i in range(4000):
        port = refused if i % 50 == 7 else ports[i % len(ports)]
        urls.append(f"http://127.0.0.1:{port}/?n={i}")
    rc, rows, err = ctx.fetch(["-c", "8", "-i", "-"], input_text="\n".join(urls) + "\n")
    assert rc == 0, err
    assert len(rows) == 4000
    assert sum(1 for r in rows if r["error"] == "refused") == 80, err
    opened = connections_opened(err)
    assert opened <= 2 * 8 + 80, err  # the spares and one failed attempt per refused line


def test_no_keepalive(ctx):
    port = ctx.nginx.ports[0]
    urls = [f"http://127.0.0.1:{port}/?n={i}" for i in range(50)]
    rc, rows, err = ctx.fetch(["-c", "4", "--no-keepalive"] + urls)
    assert rc == 0, err
    assert all(r["status"] == 200 and r["connect_ms"] > 0 for r in rows), rows


def test_method_headers_body(ctx):
    url = ctx.bad.url("echo", "/echo?q=1")
    rc, rows, err = ctx.fetch(["-X", "PUT", "-H", "X-Test: yes", "-H", "User-Agent: probe/1",
                               "--data", "hello body", "--keep-body", "64k", url])
    assert rc == 0, err
    echo = json.loads(rows[0]["body"])
    assert echo["method"] == "PUT", echo
    assert echo["target"] == "/echo?q=1", echo
    assert echo["headers"]["x-test"] == "yes", echo
    assert echo["headers"]["user-agent"] == "probe/1", echo
    assert echo["headers"]["host"] == url.split("/")[2], echo
    assert echo["body_len"] == 10 and echo["body"] == "hello body", echo


def test_post_large_body_from_file(ctx):
    path = os.path.join(ctx.tmpdir, "body.bin")
    with open(path, "w") as f:
        f.write("b" * 100000)  # larger than a slot's send buffer: sent in pieces
    rc, rows, err = ctx.fetch(["--data", "@" + path, "--keep-body", "64k", ctx.bad.url("echo")])
    assert rc == 0, err
    echo = json.loads(rows[0]["body"])
    assert echo["method"] == "POST" and echo["body_len"] == 100000, echo


def test_response_framings(ctx):
    cases = [
        ("/bytes/5000", 200, 5000),
        ("/chunked/10000", 200, 10000),
        ("/close/7000", 200, 7000),
        ("/status/204", 204, 0),
        ("/status/304", 304, 0),
        ("/status/404", 404, 9),
        ("/continue", 200, 2),
    ]
    urls = [ctx.bad.url("echo", path) for path, _, _ in cases]
    rc, rows, err = ctx.fetch(["-c", "3"] + urls)
    assert rc == 0, err
    for row, (path, status, nbytes) in zip(rows, cases):
        assert row["error"] is None, (path, row)
        assert row["status"] == status, (path, row)
        if status != 404:
            assert row["bytes"] == nbytes, (path, row)


def test_head_has_no_body(ctx):
    rc, rows, err = ctx.fetch(["-X", "HEAD", ctx.bad.url("echo", "/bytes/5000"),
                               f"http://127.0.0.1:{ctx.nginx.ports[0]}/"])
    assert rc == 0, err
    assert [(r["status"], r["bytes"], r["error"]) for r in rows] == [(200, 0, None)] * 2, rows


def test_redirect_location(ctx):
    rc, rows, err = ctx.fetch([ctx.bad.url("echo", "/redirect")])
    assert rows[0]["status"] == 302 and rows[0]["location"] == "/bytes/5", rows


def test_faults(ctx):
    cases = [
        ("hang", "timeout"),
        ("trickle", "timeout"),
        ("reset", "reset"),
        ("garbage", "protocol"),
        ("bigheader", "too_large"),
        ("badchunk", "protocol"),
        ("close", "closed"),
        ("endless", "too_large"),
    ]
    urls = [ctx.bad.url(mode) for mode, _ in cases]
    urls.append(f"http://127.0.0.1:{ctx.refused_port()}/")
    t0 = time.monotonic()
    rc, rows, err = ctx.fetch(["--timeout", "2", "--max-body", "1M"] + urls, timeout=30)
    elapsed = time.monotonic() - t0
    assert rc == 0, err
    got = [r["error"] for r in rows]
    assert got == [e for _, e in cases] + ["refused"], got
    assert elapsed < 6, elapsed  # bounded by the 2 s deadline, not by the servers


def test_accept_then_reset(ctx):
    rc, rows, err = ctx.fetch([ctx.bad.url("acceptreset")])
    assert rows[0]["error"] in ("reset", "closed"), rows


def test_resolve_option(ctx):
    port = ctx.nginx.ports[1]
    url = f"http://svc.example.test:{port}/"
    with harness.DnsServer({}) as dns:  # NXDOMAIN for everything, on loopback
        rc, rows, err = ctx.fetch(["--dns-server", dns.server,
                                   "--resolve", f"svc.example.test:{port}:127.0.0.1", url,
                                   f"http://nosuch.invalid.test:{port}/"])
    assert rc == 0, err
    ok_row(rows[0], 0, url)
    assert rows[1]["error"] == "dns", rows


def test_csv_format(ctx):
    url = f"http://127.0.0.1:{ctx.nginx.ports[0]}/"
    r = subprocess.run([ctx.ringfetch, "fetch", "-q", "--format", "csv", url, "bad url"],
                       capture_output=True, text=True, timeout=30)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("index,url,status,error,bytes"), lines
    assert lines[1].startswith(f"0,{url},200,,12,"), lines
    assert lines[2].startswith('1,bad url,,invalid_url,0,'), lines


def test_usage_errors(ctx):
    """Each message names the option and the value, and says what a good value is; getopt's
    own messages are not printed. Exit 2, no row."""
    u = "http://x/"
    for args, msg in [
            (["-c", "0", u], "-c: bad value '0' (requests at once: a whole number from 1 to "
                             "1000000)"),
            (["--concurrency", "many", u], "--concurrency: bad value 'many' (requests at "
                                           "once: a whole number from 1 to 1000000)"),
            (["--format", "xml", u], "--format: bad value 'xml' (jsonl or csv)"),
            (["--connect-timeout", "0", u], "--connect-timeout: bad value '0' (a duration "
                                            "above 0, e.g. 1.5, 250ms, 2s)"),
            (["--timeout", "soon", u], "--timeout: bad value 'soon' (a duration above 0, "
                                       "e.g. 1.5, 250ms, 2s)"),
            (["--max-body", "0", u], "--max-body: bad value '0' (a size above 0, e.g. 1000, "
                                     "64k, 1M)"),
            (["-i", "/nonexistent/file"], "cannot read /nonexistent/file: No such file or "
                                          "directory"),
            (["-X", "GET /x HTTP/1.1\r\nX:", u], "-X: bad value 'GET /x HTTP/1.1\\r\\nX:' (a "
                                                "method is a token such as GET or PURGE)"),
            (["-H", "no colon", u], "-H: bad value 'no colon' (a header is one 'Name: value' "
                                    "line)"),
            (["--resolve", "nonsense", u], "--resolve: bad value 'nonsense' (HOST:PORT:ADDR"
                                           "[,ADDR...], PORT a number or *, addresses IPv4 "
                                           "or IPv6)"),
            (["--dns-server", "nowhere", u], "--dns-server: bad value 'nowhere' (an address "
                                             "and an optional port: "),
            (["--frobnicate", u], "unknown option '--frobnicate'\n"),
            (["--frobnicate=3", u], "unknown option '--frobnicate'\n"),
            (["-Z", u], "unknown option '-Z'\n"),
            (["--timeout"], "option '--timeout' needs a value\n"),
            (["-c"], "option '-c' needs a value\n"),
            (["--quiet=yes", u], "option '--quiet' takes no value\n"),
            (["--re", u], "ambiguous option '--re' (--request, --resolve, --retries, "
                          "--retry-on, --retry-delay, --resume)\n")]:
        r = subprocess.run([ctx.ringfetch, "fetch"] + args, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30)
        assert (r.returncode, r.stdout) == (2, ""), (args, r.returncode, r.stdout)
        assert r.stderr.startswith("ringfetch fetch: " + msg), (args, r.stderr)
        assert "unrecognized" not in r.stderr and "requires an argument" not in r.stderr


def test_sigint_and_sigterm_write_cancelled_rows(ctx):
    hang = ctx.bad.url("hang")
    port = ctx.nginx.ports[0]
    lines = []
    for i in range(200):
        lines.append(hang if i % 2 else f"http://127.0.0.1:{port}/?{i}")
    inp = os.path.join(ctx.tmpdir, "sigint.txt")
    with open(inp, "w") as f:
        f.write("\n".join(lines) + "\n")
    for sig in (signal.SIGINT, signal.SIGTERM):
        p = subprocess.Popen([ctx.ringfetch, "fetch", "-c", "20", "--timeout", "60", "-i", inp],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # let it admit work and block on the hanging server
        p.send_signal(sig)
        out, err = p.communicate(timeout=20)
        rows = [json.loads(l) for l in out.splitlines()]
        assert p.returncode == 128 + sig, (sig, p.returncode, err)
        assert [r["index"] for r in rows] == list(range(len(rows))), "rows out of order or lost"
        # Every admitted line has its row: the 20 in flight at least, never all 200.
        assert 20 <= len(rows) < 200, len(rows)
        assert any(r["error"] == "cancelled" for r in rows), rows
        assert all(r["error"] in (None, "cancelled") for r in rows), rows
        assert "interrupted" in err, err


def test_pipe_to_head_exits_quietly(ctx):
    port = ctx.nginx.ports[0]
    inp = os.path.join(ctx.tmpdir, "many.txt")
    with open(inp, "w") as f:
        for i in range(200000):
            f.write(f"http://127.0.0.1:{port}/?{i}\n")
    t0 = time.monotonic()
    r = subprocess.run(f"'{ctx.ringfetch}' fetch -i '{inp}' | head -1", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert time.monotonic() - t0 < 10
    assert json.loads(r.stdout)["index"] == 0, r.stdout
    assert r.stderr == "", r.stderr


def test_low_open_file_limit(ctx):
    """With 64 open files allowed, -c 1000 still gives every line its row."""
    port = ctx.nginx.ports[0]
    urls = "\n".join(f"http://127.0.0.1:{port}/?{i}" for i in range(3000)) + "\n"
    r = subprocess.run(["prlimit", "--nofile=64:64", ctx.ringfetch, "fetch", "-c", "1000",
                        "-i", "-"], input=urls, capture_output=True, text=True, timeout=60)
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert r.returncode == 0, r.stderr
    assert len(rows) == 3000 and all(r["status"] == 200 for r in rows), r.stderr


def test_api_example_from_docs(ctx):
    doc = open(os.path.join(ctx.root, "docs", "api.md")).read()
    code = doc.split("```c\n", 1)[1].split("```", 1)[0]
    exe = ctx.compile_c("example", code)
    port = ctx.nginx.ports[0]
    r = subprocess.run([exe, f"http://127.0.0.1:{port}/", "http://[::1", "ftp://x/"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"0 http://127.0.0.1:{port}/ status=200 error=ok bytes=12"), lines
    assert lines[1].startswith("1 http://[::1 status=0 error=invalid_url"), lines
    assert lines[2].startswith("2 ftp://x/ status=0 error=unsupported_scheme"), lines
    assert lines[3] == "1 of 3 ok", lines


def test_overlong_line_is_one_invalid_row(ctx):
    url = ctx.nginx.url("/")
    text = url + "\n" + "http://127.0.0.1/" + "a" * 70000 + "\n" + url + "\n"
    rc, rows, err = ctx.fetch(["-i", "-"], input_text=text)
    assert rc == 0, err
    assert [r["error"] for r in rows] == [None, "invalid_url", None], rows
    assert [r["index"] for r in rows] == [0, 1, 2]
