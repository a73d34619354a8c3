"""ringfetch fetch's input: read only when poll() says so, rows streaming while the input
trickles in; the line rule (BOM, CRLF, blank and # lines), `line` across every source in
command-line order; URLs as people write them (no scheme, any case, IDN hosts, spaces,
user:pass@); several addresses per name; input errors. Against nginx, the DNS server and
the black hole of the harness."""
import base64
import json
import os
import pty
import select
import subprocess
import threading
import time

import harness


def url(ctx, path="/", i=0):
    return f"http://127.0.0.1:{ctx.nginx.ports[i]}{path}"


def logging_nginx(ctx):
    """A run-wide nginx with an access log (ACCESS_FIELDS: the last one is $request_uri)."""
    return ctx.server("nginx-input-log", lambda: harness.Nginx(n_ports=1, access_log=True)
                      .start())


class BesideBlackhole:
    """harness.nginx_beside_blackhole() as one run-wide server: .bh on 127.0.0.3:P, .ng on
    127.0.0.1:P and [::1]:P."""

    def __init__(self):
        self.bh, self.ng = harness.nginx_beside_blackhole()
        self.port = self.bh.port

    def stop(self):
        self.bh.stop()
        self.ng.stop()


def beside_blackhole(ctx):
    return ctx.server("nginx-beside-blackhole", BesideBlackhole)


def write(ctx, name, data):
    path = os.path.join(ctx.tmpdir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def timed_rows(proc, deadline):
    """(monotonic time, row) for each stdout line of proc until it ends."""
    out, buf = [], b""
    fd = proc.stdout.fileno()
    for _ in range(100000):
        left = deadline - time.monotonic()
        assert left > 0, f"still running; rows so far: {out[-3:]}"
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        now = time.monotonic()
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.append((now, json.loads(line)))
    return out


# ---------------------------------------------------------------- slow input


def test_slow_stdin_one_line_a_second(ctx):
    """The brief's shell loop: six lines a second apart at -c 2 with a 1.5 s deadline. The
    engine must not wait inside the input while a request runs: each row is 200, its
    connect and total times those of a loopback request, not of the input's pauses."""
    u = url(ctx, "/?slow")
    cmd = (f"for i in 1 2 3 4 5 6; do echo '{u}'$i; sleep 1; done | "
           f"'{ctx.ringfetch}' fetch -q -c 2 --timeout 1.5 -i -")
    t0 = time.monotonic()
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - t0
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert r.returncode == 0, r.stderr
    assert [(x["index"], x["line"], x["url"], x["status"], x["error"]) for x in rows] == [
        (i, i + 1, f"{u}{i + 1}", 200, None) for i in range(6)], rows
    for x in rows:
        assert x["connect_ms"] < 100 and x["total_ms"] < 200, x
    assert elapsed < 8, elapsed  # the input's 6 s, then the last request


def test_trickle_rows_follow_the_input(ctx):
    """200 URLs at 50 lines/s through a pipe, --timeout 1: every row 200, the first out
    within 0.5 s of the first line, the last within 0.5 s of the last line."""
    port = ctx.nginx.ports[0]
    p = subprocess.Popen([ctx.ringfetch, "fetch", "-q", "--timeout", "1", "-i", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sent = []

    def feed():
        t = time.monotonic()
        for i in range(200):
            t += 0.02
            time.sleep(max(0.0, t - time.monotonic()))
            sent.append(time.monotonic())
            p.stdin.write(f"http://127.0.0.1:{port}/?trickle={i}\n".encode())
            p.stdin.flush()
        p.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        rows = timed_rows(p, time.monotonic() + 30)
        p.wait(10)
    finally:
        writer.join(10)
        p.kill()
        p.wait()
        err = p.stderr.read().decode()
        p.stderr.close()
        p.stdout.close()
    assert p.returncode == 0, err
    assert [r["index"] for _, r in rows] == list(range(200)), err
    assert all((r["status"], r["error"]) == (200, None) for _, r in rows), rows
    assert rows[0][0] - sent[0] < 0.5, rows[0][0] - sent[0]
    assert rows[-1][0] - sent[-1] < 0.5, rows[-1][0] - sent[-1]


def test_invalid_lines_do_not_stall(ctx):
    """10,000 invalid_url lines at -c 10: they take no slot and no wait, under 0.5 s."""
    path = write(ctx, "bad.txt", "".join(f"not a url {i}\n" for i in range(10000)).encode())
    t0 = time.monotonic()
    rc, rows, err = ctx.fetch(["-q", "-c", "10", "-i", path])
    elapsed = time.monotonic() - t0
    assert rc == 0, err
    assert len(rows) == 10000 and all(r["error"] == "invalid_url" for r in rows)
    assert [r["line"] for r in rows] == list(range(1, 10001))
    assert elapsed < 0.5, elapsed


def test_concurrency_limit_and_memory(ctx):
    """-c 1000000 (RF_MAX_CONCURRENCY) with one URL: under 1 s, peak RSS under 64 MB (the
    child's own rusage); one above the limits is refused with the limit named."""
    t0 = time.monotonic()
    p, peak_kb = harness.run_peak_rss([ctx.ringfetch, "fetch", "-q", "-c", "1000000",
                                       url(ctx, "/?huge")], capture_output=True, timeout=30)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == 200, p.stdout
    if not ctx.sanitize_flags:  # ASan's shadow memory and quarantine: no bounds then
        assert elapsed < 1.0, elapsed
        assert peak_kb < 64 * 1024, peak_kb
    for args, msg in ((["-c", "1000001"], "-c: bad value '1000001' (requests at once: a whole "
                                          "number from 1 to 1000000)"),
                      (["--window", "16777217"], "--window: bad value '16777217' (a whole "
                                                 "number from 1 to 16777216)")):
        rc, rows, err = ctx.fetch(args + [url(ctx)])
        assert (rc, rows) == (2, []), (args, rc, err)
        assert f"ringfetch fetch: {msg}\n" in err, err


# ---------------------------------------------------------------- the line rule


def test_bom_crlf_comments_and_blank_lines(ctx):
    """A BOM at the start is dropped, CRLF and blanks trimmed; blank and # lines make no
    request and no row; `line` counts every line so rows join back to the file."""
    u = url(ctx)
    text = ("\ufeff" + u + "?a\r\n"       # 1: BOM, CRLF
            "# a comment\r\n"             # 2: no row
            "\r\n"                        # 3: blank
            "   \t \r\n"                  # 4: blank
            "  " + u + "?b  \r\n"         # 5
            "   # indented comment\n"     # 6: no row
            "not a url\n"                 # 7: a row, invalid_url
            "\ufeff# BOM then comment\n"  # 8: no row
            + u + "?c")                   # 9: no final newline
    path = write(ctx, "lines.txt", text.encode())
    for args, inp in ((["-i", path], None), (["-i", "-"], text)):
        rc, rows, err = ctx.fetch(["-q"] + args, input_text=inp)
        assert rc == 0, err
        got = [(r["index"], r["line"], r["url"], r["status"], r["error"]) for r in rows]
        assert got == [(0, 1, u + "?a", 200, None), (1, 5, u + "?b", 200, None),
                       (2, 7, "not a url", None, "invalid_url"),
                       (3, 9, u + "?c", 200, None)], got


def test_sources_in_command_line_order(ctx):
    """URL arguments and several -i files, read in the order given; `line` counts the lines
    of all of them (an argument is one line), `index` the requests."""
    a = write(ctx, "a.txt", f"{url(ctx, '/a1')}\n\n{url(ctx, '/a2')}\n".encode())
    b = write(ctx, "b.txt", f"# b\n{url(ctx, '/b1')}".encode())  # no final newline
    rc, rows, err = ctx.fetch(["-q", url(ctx, "/x1"), "-i", a, url(ctx, "/x2"), "-i", b,
                               url(ctx, "/x3")])
    assert rc == 0, err
    got = [(r["index"], r["line"], r["url"].rsplit("/", 1)[1], r["status"]) for r in rows]
    assert got == [(0, 1, "x1", 200), (1, 2, "a1", 200), (2, 4, "a2", 200), (3, 5, "x2", 200),
                   (4, 7, "b1", 200), (5, 8, "x3", 200)], got


def test_stdin_by_default_unless_a_terminal(ctx):
    text = f"{url(ctx, '/s1')}\n{url(ctx, '/s2')}\n"
    rc, rows, err = ctx.fetch(["-q"], input_text=text)
    assert rc == 0, err
    assert [(r["line"], r["status"]) for r in rows] == [(1, 200), (2, 200)], rows
    master, slave = pty.openpty()
    try:
        r = subprocess.run([ctx.ringfetch, "fetch"], stdin=slave, capture_output=True,
                           text=True, timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    assert (r.returncode, r.stdout) == (2, ""), r
    assert r.stderr.startswith("ringfetch fetch: no URLs: give them as arguments, with -i "
                               "FILE, or on standard input"), r.stderr


def test_input_errors_name_the_file(ctx):
    """A directory or a missing file: exit 2 before any row, the file and the reason named.
    A read error mid-run: the rows so far, then exit 1 with the file and the reason."""
    for path, why in ((ctx.tmpdir, "Is a directory"),
                      ("/nonexistent/urls.txt", "No such file or directory")):
        rc, rows, err = ctx.fetch([url(ctx), "-i", path])
        assert (rc, rows) == (2, []), (path, rc, rows, err)
        assert err == f"ringfetch fetch: cannot read {path}: {why}\n", err
    # /proc/self/mem opens, and reading its first page (never mapped) fails with EIO
    rc, rows, err = ctx.fetch(["-q", url(ctx, "/before"), "-i", "/proc/self/mem"])
    assert rc == 1, (rc, err)
    assert [(r["line"], r["status"]) for r in rows] == [(1, 200)], rows
    assert err == "ringfetch fetch: cannot read /proc/self/mem: Input/output error\n", err


# --------------------------------------------------------- URLs as people write them


def test_scheme_case_and_default_scheme(ctx):
    port = ctx.nginx.ports[0]
    lines = [f"HTTP://127.0.0.1:{port}/upper", f"127.0.0.1:{port}/bare",
             f"Http://127.0.0.1:{port}"]
    rc, rows, err = ctx.fetch(["-q"] + lines)
    assert rc == 0, err
    assert [(r["url"], r["status"], r["error"]) for r in rows] == [
        (l, 200, None) for l in lines], rows
    # --default-scheme https against the https nginx of the test PKI
    ng = ctx.server("nginx-input-https", lambda: harness.Nginx(
        n_ports=1, tls=dict(cert=ctx.pki.server_cert, key=ctx.pki.server_key)).start())
    bare = f"localhost:{ng.ports[0]}/tls"
    rc, rows, err = ctx.fetch(["-q", "--default-scheme", "https", "--cacert", ctx.pki.ca_cert,
                               "--resolve", f"localhost:{ng.ports[0]}:127.0.0.1", bare])
    assert rc == 0, err
    assert (rows[0]["url"], rows[0]["status"], rows[0]["tls_version"] in ("TLSv1.2", "TLSv1.3")
            ) == (bare, 200, True), rows
    rc, rows, err = ctx.fetch(["--default-scheme", "ftp", bare])
    assert rc == 2 and err.startswith(
        "ringfetch fetch: --default-scheme: bad value 'ftp' (http or https)\n"), err


def test_idn_host_through_dns(ctx):
    """bücher.test is asked for as xn--bcher-kva.test and reaches nginx; the row keeps the
    name as written (UTF-8 in the JSON, not escaped bytes)."""
    port = ctx.nginx.ports[0]
    line = f"http://bücher.test:{port}/idn"
    with harness.DnsServer({"bücher.test": "127.0.0.1"},
                           log=os.path.join(ctx.tmpdir, "dns.log")) as dns:
        r = subprocess.run([ctx.ringfetch, "fetch", "-q", "--dns-server", dns.server, line],
                           capture_output=True, timeout=30)
        queries = dns.queries()
    assert r.returncode == 0, r.stderr
    assert f'"url":"{line}"'.encode() in r.stdout, r.stdout
    row = json.loads(r.stdout)
    assert (row["status"], row["ip"]) == (200, "127.0.0.1"), row
    assert ("xn--bcher-kva.test", "A") in queries, queries


def test_space_and_non_ascii_path_percent_encoded(ctx):
    """Spaces and non-ASCII in the path and query are sent percent-encoded; in a fragment
    they are accepted too, and the fragment is not sent."""
    ng = logging_nginx(ctx)
    line = f"http://127.0.0.1:{ng.ports[0]}/a b/café?q=ü&id=enc"
    frag = f"http://127.0.0.1:{ng.ports[0]}/f?id=frag#part two é"
    rc, rows, err = ctx.fetch(["-q", "-c", "1", line, frag])
    assert rc == 0, err
    assert [(r["url"], r["status"]) for r in rows] == [(line, 200), (frag, 200)], rows
    log = ng.log_entries(contains="id=enc", count=1)
    assert [e["uri"] for e in log] == ["/a%20b/caf%C3%A9?q=%C3%BC&id=enc"], log
    log = ng.log_entries(contains="id=frag", count=1)
    assert [e["uri"] for e in log] == ["/f?id=frag"], log


def test_dot_segments_removed_as_curl_does(ctx):
    """"." and ".." path segments are removed before sending (RFC 3986 5.2.4, as curl,
    httpx and browsers do); not in the query; the row keeps the line as written."""
    ng = logging_nginx(ctx)
    base = f"http://127.0.0.1:{ng.ports[0]}"
    lines = [f"{base}/../a/./b/../c?id=dots1&p=/../x", f"{base}/a/..?id=dots2",
             f"{base}/.well-known/x..y/.z?id=dots3"]
    rc, rows, err = ctx.fetch(["-q", "-c", "1"] + lines)
    assert rc == 0, err
    assert [(r["url"], r["status"]) for r in rows] == [(l, 200) for l in lines], rows
    sent = [ng.log_entries(contains=f"id=dots{k}", count=1)[0]["uri"] for k in (1, 2, 3)]
    assert sent == ["/a/c?id=dots1&p=/../x", "/?id=dots2", "/.well-known/x..y/.z?id=dots3"], sent


def test_userinfo_becomes_basic_auth(ctx):
    """user:p%40ss@ is sent as Authorization: Basic (escapes decoded) and left out of the
    row's url; the server sees no credentials in the target."""
    w = ctx.server("nginx-redirects", lambda: harness.redirect_world(ctx.pki))
    tag = f"auth-{time.monotonic_ns()}"
    line = f"http://user:p%40ss@127.0.0.1:{w.http_port}/target?id={tag}"
    rc, rows, err = ctx.fetch(["-q", line])
    assert rc == 0, err
    assert (rows[0]["url"], rows[0]["line"], rows[0]["status"]) == (
        f"http://127.0.0.1:{w.http_port}/target?id={tag}", 1, 200), rows
    log = w.log_entries(contains=tag, count=1)
    assert [(e["uri"], e["authorization"]) for e in log] == [
        (f"/target?id={tag}", "Basic " + base64.b64encode(b"user:p@ss").decode())], log


# ---------------------------------------------------------- several addresses per name


def test_several_addresses_per_name(ctx):
    """A refused address before a serving one, in DNS and in --resolve: every row 200 from
    the second, addresses_tried 2 on the new connection and on its reuse. IPv6 is tried first (RFC 8305): a
    serving ::1 beside a refusing 127.0.0.2 answers at the first try."""
    port = beside_blackhole(ctx).port
    names = {"multi.test": "127.0.0.2,127.0.0.1", "mixed.test": "127.0.0.2,::1",
             "v6first.test": "127.0.0.1,::1"}
    refused_v6 = ctx.nginx.ports[0]  # nginx listens on 127.0.0.1 only there: ::1 refuses
    with harness.DnsServer(names) as dns:
        rc, rows, err = ctx.fetch(["-q", "-c", "1", "--dns-server", dns.server,
                                   f"http://multi.test:{port}/1", f"http://multi.test:{port}/2",
                                   f"http://mixed.test:{port}/3",
                                   f"http://v6first.test:{refused_v6}/4"])
    assert rc == 0, err
    got = [(r["status"], r["ip"], r["addresses_tried"]) for r in rows]
    assert got == [(200, "127.0.0.1", 2), (200, "127.0.0.1", 2), (200, "::1", 1),
                   (200, "127.0.0.1", 2)], rows
    rc, rows, err = ctx.fetch(["-q", "--resolve", f"r.test:{port}:127.0.0.2,127.0.0.1",
                               f"http://r.test:{port}/5"])
    assert rc == 0, err
    assert [(r["status"], r["ip"], r["addresses_tried"]) for r in rows] == [
        (200, "127.0.0.1", 2)], rows


def test_blackholed_first_address(ctx):
    """The first address drops SYNs: the next attempt starts 250 ms later (Happy Eyeballs)
    and answers; the row is 200 within 250 ms plus a loopback request."""
    port = beside_blackhole(ctx).port
    with harness.DnsServer({"dark.test": "127.0.0.3,127.0.0.1"}) as dns:
        rc, rows, err = ctx.fetch(["-q", "--dns-server", dns.server,
                                   f"http://dark.test:{port}/bh"])
    assert rc == 0, err
    r = rows[0]
    assert (r["status"], r["ip"], r["addresses_tried"]) == (200, "127.0.0.1", 2), r
    assert 250 <= r["connect_ms"] and r["total_ms"] < 250 + 150, r


def test_fallback_at_scale(ctx):
    """1,000 URLs to a name whose first address refuses and second serves, -c 100: all 200,
    and the wall time within 1.5 x the same list sent to the serving address directly. A
    name whose first address black-holes SYNs: every row 200, each within 250 ms (the
    Happy Eyeballs delay) of the same request's normal time."""
    port = beside_blackhole(ctx).port

    def timed(host, dns, n=1000):
        urls = "".join(f"http://{host}:{port}/?i={i}\n" for i in range(n))
        t0 = time.monotonic()
        rc, rows, err = ctx.fetch(["-q", "-c", "100", "--dns-server", dns.server, "-i", "-"],
                                  input_text=urls, timeout=120)
        wall = time.monotonic() - t0
        assert rc == 0 and len(rows) == n, err
        assert {(r["status"], r["error"]) for r in rows} == {(200, None)}, rows[:3]
        return rows, wall

    names = {"refuses-first.test": "127.0.0.2,127.0.0.1", "direct.test": "127.0.0.1",
             "dark-first.test": "127.0.0.3,127.0.0.1"}
    with harness.DnsServer(names) as dns:
        walls = {"direct": [], "fallback": []}
        for _ in range(3):  # alternating, medians: this machine is noisy
            walls["direct"].append(timed("direct.test", dns)[1])
            rows, wall = timed("refuses-first.test", dns)
            walls["fallback"].append(wall)
        assert {r["ip"] for r in rows} == {"127.0.0.1"}, rows[:3]
        direct, fallback = (sorted(w)[1] for w in (walls["direct"], walls["fallback"]))
        assert fallback <= 1.5 * direct + 0.05, walls
        normal, _ = timed("direct.test", dns, 100)
        dark, _ = timed("dark-first.test", dns, 100)
    normal_ms = sorted(r["total_ms"] for r in normal)[len(normal) // 2]
    assert all(r["ip"] == "127.0.0.1" for r in dark), dark[:3]
    assert max(r["total_ms"] for r in dark) <= 250 + normal_ms + 100, \
        (normal_ms, max(r["total_ms"] for r in dark))


test_fallback_at_scale.timeout = 180
