"""The test servers themselves: badserver's modes, the delay server, the DNS server, the
black hole and the private nginx worlds behave as the engine's tests assume, checked with
plain sockets, http.client and ssl, never with ringfetch."""
import email.utils
import errno
import http.client
import json
import os
import resource
import select
import socket
import ssl
import statistics
import struct
import time
import urllib.parse

import harness


def raw(port, request, timeout=5.0, limit=1 << 22):
    """Sends request, reads until close (or limit bytes); returns the bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return harness.recv_until_close(s, limit)


def get(port, path, method="GET", body=None, headers=None, timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def decode_chunked(data):
    """Strict decoder: returns (body, chunk count, extensions seen, trailer lines)."""
    body, chunks, exts = bytearray(), 0, 0
    pos = 0
    for _ in range(100000):
        eol = data.index(b"\r\n", pos)
        size_field, _, ext = data[pos:eol].partition(b";")
        exts += bool(ext)
        size = int(size_field, 16)
        pos = eol + 2
        if size == 0:
            trailers = data[pos:].split(b"\r\n")
            assert trailers[-2:] == [b"", b""], trailers
            return bytes(body), chunks, exts, [t for t in trailers if t]
        body += data[pos:pos + size]
        assert data[pos + size:pos + size + 2] == b"\r\n", "chunk not followed by CRLF"
        pos += size + 2
        chunks += 1
    raise AssertionError("too many chunks")


def test_echo_describes_request(ctx):
    port = ctx.bad.port("echo")
    status, hdrs, body = get(port, "/echo?q=1", "PUT", b"hello body",
                             {"X-Test": "yes", "User-Agent": "probe/1"})
    assert status == 200, status
    assert hdrs["content-type"] == "application/json", hdrs
    echo = json.loads(body)
    assert echo["method"] == "PUT", echo
    assert echo["target"] == "/echo?q=1", echo
    assert echo["headers"]["x-test"] == "yes", echo
    assert echo["headers"]["user-agent"] == "probe/1", echo
    assert echo["headers"]["host"] == f"127.0.0.1:{port}", echo
    assert echo["body_len"] == 10 and echo["body"] == "hello body", echo


def test_echo_keepalive_and_close(ctx):
    port = ctx.bad.port("echo")
    reqs = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /bytes/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = raw(port, reqs)  # pipelined; raw() returning at all proves the close was honoured
    assert out.count(b"HTTP/1.1 200 OK\r\n") == 3, out
    assert b'"target": "/a"' in out and b'"body_len": 3' in out, out
    assert out.endswith(b"Connection: close\r\n\r\nxxxx"), out[-200:]


def test_echo_large_body_read_by_length(ctx):
    status, _, body = get(ctx.bad.port("echo"), "/", "POST", b"b" * 100000)
    echo = json.loads(body)
    assert status == 200 and echo["body_len"] == 100000, echo
    assert echo["body"] == "b" * 1000, len(echo["body"])


def test_echo_routes(ctx):
    port = ctx.bad.port("echo")
    assert get(port, "/bytes/5000")[2] == b"x" * 5000
    status, hdrs, body = get(port, "/status/404")
    assert (status, body) == (404, b"Not Found"), (status, body)
    status, hdrs, body = get(port, "/status/204")
    assert (status, body, "content-length" in hdrs) == (204, b"", False), hdrs
    status, hdrs, body = get(port, "/redirect")
    assert (status, hdrs["location"]) == (302, "/bytes/5"), hdrs
    status, hdrs, body = get(port, "/server")
    assert hdrs["server"] == "badserver", hdrs
    status, hdrs, body = get(port, "/bytes/5000", method="HEAD")
    assert (status, hdrs["content-length"], body) == (200, "5000", b""), hdrs


def test_echo_chunked_is_valid(ctx):
    port = ctx.bad.port("echo")
    out = raw(port, b"GET /chunked/10000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, data = out.partition(b"\r\n\r\n")
    assert b"\r\nTransfer-Encoding: chunked" in head, head
    assert b"Content-Length" not in head, head
    body, chunks, exts, trailers = decode_chunked(data)
    assert body == b"y" * 10000, len(body)
    assert chunks >= 3 and exts >= 1, (chunks, exts)
    assert trailers == [b"X-Checksum: none"], trailers
    assert get(port, "/chunked/777")[2] == b"y" * 777  # http.client agrees


def test_echo_close_delimited_and_continue(ctx):
    port = ctx.bad.port("echo")
    out = raw(port, b"GET /close/7000 HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Length" not in head and b"Connection: close" in head, head
    assert body == b"x" * 7000, len(body)
    out = raw(port, b"GET /continue HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), out
    assert out.endswith(b"\r\n\r\nok"), out


def test_hang_really_hangs(ctx):
    with socket.create_connection(("127.0.0.1", ctx.bad.port("hang")), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(1.2)
        t0 = time.monotonic()
        try:
            data = s.recv(1)
        except socket.timeout:
            data = None
        assert data is None, data
        assert time.monotonic() - t0 >= 1.0


def test_reset_gives_econnreset(ctx):
    got = bytearray()
    with socket.create_connection(("127.0.0.1", ctx.bad.port("reset")), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        err = None
        for _ in range(1000):
            try:
                data = s.recv(65536)
            except ConnectionResetError as e:
                err = e
                break
            if not data:
                break
            got += data
    assert err is not None and err.errno == errno.ECONNRESET, (err, len(got))
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 100000" in got, got[:100]


def test_acceptreset(ctx):
    # The RST may already be there when connect() reports back, or come at the first recv().
    data = None
    try:
        with socket.create_connection(("127.0.0.1", ctx.bad.port("acceptreset")),
                                      timeout=5) as s:
            data = s.recv(1)
    except ConnectionResetError:
        data = "reset"
    assert data == "reset", data


def test_trickle_is_slow(ctx):
    with socket.create_connection(("127.0.0.1", ctx.bad.port("trickle")), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        first = s.recv(100)
        assert first == b"H", first
        s.settimeout(0.5)
        got = b""
        try:
            got = s.recv(100)
        except socket.timeout:
            pass
        assert got == b"" and time.monotonic() - t0 >= 0.5, got


def test_fault_modes_bytes(ctx):
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    g1, g2 = raw(ctx.bad.port("garbage"), req), raw(ctx.bad.port("garbage"), req)
    assert len(g1) == 200 and g1 == g2 and not g1.startswith(b"HTTP"), g1
    assert raw(ctx.bad.port("close"), req) == b""
    with socket.create_connection(("127.0.0.1", ctx.bad.port("badchunk")), timeout=5) as s:
        s.sendall(req)
        data = b""
        for _ in range(100):
            data += s.recv(4096)
            if data.endswith(b"zz\r\n"):
                break
    assert data == b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", data
    big = raw(ctx.bad.port("bigheader"), req)
    assert big.startswith(b"HTTP/1.1 200 OK\r\nX-Big: aaa") and len(big) > 1 << 20, len(big)
    assert big.endswith(b"\r\nContent-Length: 2\r\n\r\nok"), big[-60:]
    endless = raw(ctx.bad.port("endless"), req, limit=4 << 20)
    head = endless.partition(b"\r\n\r\n")[0]
    assert b"Connection: close" in head and b"Content-Length" not in head, head
    assert len(endless) >= 4 << 20, len(endless)


def test_badserver_holds_1000_connections(ctx):
    need = 2300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            ctx.skip(f"open file limit {hard} < {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    hang, echo = ctx.bad.port("hang"), ctx.bad.port("echo")
    socks = []
    try:
        for _ in range(1000):
            socks.append(socket.create_connection(("127.0.0.1", hang), timeout=5))
        talkers = []
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", echo), timeout=10)
            socks.append(s)
            talkers.append(s)
            s.sendall(b"GET /n%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
        for i, s in enumerate(talkers):
            data = b""
            for _ in range(100):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK") and b'"/n%d"' % i in data, (i, data)
        for s in socks[:1000]:  # the hanging ones are all still open and silent
            s.setblocking(False)
            try:
                data = s.recv(1)
            except BlockingIOError:
                data = None
            assert data is None, data
    finally:
        for s in socks:
            s.close()


def test_nginx_routes(ctx):
    port = ctx.nginx.ports[0]
    status, hdrs, body = get(port, "/")
    assert (status, body, hdrs["content-type"]) == (200, b"hello world\n", "text/plain"), hdrs
    assert hdrs["content-length"] == "12", hdrs
    status, hdrs, body = get(port, "/static/64k.bin")
    assert (status, len(body)) == (200, 65536), (status, len(body))
    status, hdrs, body = get(port, "/redirect")
    assert (status, hdrs["location"]) == (301, "/"), hdrs
    status, hdrs, body = get(port, "/status/404")
    assert (status, body) == (404, b"not found\n"), (status, body)
    out = raw(port, b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, data = out.partition(b"\r\n\r\n")
    assert b"\r\nTransfer-Encoding: chunked" in head and b"Content-Length" not in head, head
    assert b"chunked page" in decode_chunked(data)[0], data
    for p in ctx.nginx.ports:
        assert get(p, "/")[2] == b"hello world\n", p


# ----------------------------------------------------------------- delayserver

DELAY_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n"
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def delay_conn(port, host="127.0.0.1"):
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def answers_at(sock, n, answer=DELAY_ANSWER):
    """Reads n answers; the perf_counter_ns (CLOCK_MONOTONIC) at which each was whole."""
    times, buf = [], b""
    for _ in range(10000):
        if len(times) >= n:
            break
        data = sock.recv(65536)
        if not data:
            break
        now = time.perf_counter_ns()
        buf += data
        times += [now] * (buf.count(answer) - len(times))
    assert buf == answer * n, buf[-300:]
    return times


def send_at(sock, data, at_ns):
    """Sends data at perf_counter_ns at_ns (a busy wait: sleep would be 50+ us late);
    returns the time taken just before the send."""
    for _ in range(100000000):
        if time.perf_counter_ns() >= at_ns:
            break
    t = time.perf_counter_ns()
    sock.sendall(data)
    return t


def timed_gets(port, n):
    """n GETs one after another on one connection: microseconds from just before each send
    to the last byte of its answer."""
    out = []
    with delay_conn(port) as s:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            s.sendall(GET)
            out.append((answers_at(s, 1)[0] - t0) / 1000)
            time.sleep(0.0003)
    return out


def test_delayserver_answers_d_after_arrival(ctx):
    """The answer comes D after the send: never earlier (the arrival is after the send),
    and the median within 150 us of D plus the loopback round trip of a D=0 server."""
    with harness.DelayServer(0) as zero:
        rtt = statistics.median(timed_gets(zero.port, 200)[20:])
    for d in (2000, 500):
        with harness.DelayServer(d) as ds:
            got = timed_gets(ds.port, 220)[20:]  # the first ones teach it the timer's lateness
        med = statistics.median(got)
        assert min(got) >= d, (d, min(got))
        assert med <= d + rtt + 150, (d, med, rtt)
        st = ds.stats
        assert st["answered"] == 220 and st["requests"] == 220, st
        # The kernel's receive stamps, not read times (a rare one without is replaced).
        assert st["stamp_kernel"] >= 209, st
        assert st["late_us"]["p50"] <= 50, st


def test_delayserver_pipelined_each_after_its_own_arrival(ctx):
    """Each scenario 7 times: every answer at least D after its request's last byte was
    sent (a hard bound), and the medians near D (a client descheduled on this busy box
    reads late now and then, so single timings only bound from below)."""
    d, us = 3000, 1000
    ds = ctx.server("delay-3000", lambda: harness.DelayServer(d).start())
    together, a_to_b, b_after, body_after = [], [], [], []
    body = b"x" * 20000
    post = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with delay_conn(ds.port) as s:
        for _ in range(7):
            # Three requests in one segment arrive together: three answers D later, not 3 D.
            t0 = time.perf_counter_ns()
            s.sendall(GET * 3)
            times = answers_at(s, 3)
            assert times[0] - t0 >= d * us, (times[0] - t0) / us
            together.append((times[2] - t0) / us)

            # A, then B 1.5 ms later, before A is answered: B D after B, 1.5 ms after A.
            t0 = send_at(s, GET, time.perf_counter_ns())
            t1 = send_at(s, GET, t0 + 1500 * us)
            ta, tb = answers_at(s, 2)
            assert ta - t0 >= d * us and tb - t1 >= d * us, ((ta - t0) / us, (tb - t1) / us)
            a_to_b.append((tb - ta - (t1 - t0)) / us)
            b_after.append((tb - t1) / us)

            # A body in two pieces 1.5 ms apart: the answer is D after the last byte.
            t0 = send_at(s, post + body[:7000], time.perf_counter_ns())
            t1 = send_at(s, body[7000:], t0 + 1500 * us)
            (ta,) = answers_at(s, 1)
            assert ta - t1 >= d * us, ((ta - t0) / us, (t1 - t0) / us)
            body_after.append((ta - t1) / us)
    med = statistics.median
    # Not 3 D for the third; not at A's time for B; not D after A's answer (4.5 ms).
    assert med(together) <= d + 700, together
    assert abs(med(a_to_b)) <= 500, a_to_b
    assert med(b_after) <= d + 700, b_after
    assert med(body_after) <= d + 700, body_after


def test_delayserver_80_connections_head_and_close(ctx):
    d = 2000
    ds = ctx.server("delay-2000", lambda: harness.DelayServer(d).start())
    socks = [delay_conn(ds.port) for _ in range(80)]
    try:
        for _ in range(2):  # twice: the connections are kept alive
            sent = []
            for s in socks:
                sent.append(time.perf_counter_ns())
                s.sendall(GET)
            for s, t in zip(socks, sent):
                assert answers_at(s, 1)[0] - t >= d * 1000
    finally:
        for s in socks:
            s.close()
    with delay_conn(ds.port) as s:
        s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        out = harness.recv_until_close(s)  # returns at all: it closed after the second
    assert out == (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"
                   b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
                   b"hello world\n"), out


def test_delayserver_pinned_with_taskset(ctx):
    with harness.DelayServer(0, cpus="0") as ds:
        with open(f"/proc/{ds.proc.pid}/status") as f:
            allowed = [l.split()[1] for l in f if l.startswith("Cpus_allowed_list:")]
        assert allowed == ["0"], allowed
        assert raw(ds.port, b"GET / HTTP/1.0\r\n\r\n") == (
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n")


# ------------------------------------------------------ badserver: flaky, count

def unique(name):
    return f"{name}-{time.monotonic_ns()}"


def test_flaky_429_then_200(ctx):
    port, fid = ctx.bad.port("flaky"), unique("t429")
    t_start = time.monotonic()
    status, hdrs, body = get(port, f"/429-then-200?id={fid}&after=3")
    assert (status, hdrs["retry-after"], hdrs["x-attempt"]) == (429, "3", "1"), hdrs
    for n in (2, 3):
        status, hdrs, body = get(port, f"/429-then-200?id={fid}&after=3")
        assert (status, body, hdrs["x-attempt"], "retry-after" in hdrs) == (
            200, b"ok\n", str(n), False), hdrs
    assert get(port, f"/429-then-200?id={fid}-b")[1]["retry-after"] == "1"  # the default
    log = ctx.bad.requests(count=3, mode="flaky", id=fid)
    assert [(e["route"], e["attempt"], e["status"]) for e in log] == [
        ("/429-then-200", 1, 429), ("/429-then-200", 2, 200), ("/429-then-200", 3, 200)], log
    assert t_start <= log[0]["t"] <= log[1]["t"] <= log[2]["t"] <= time.monotonic(), log


def test_flaky_429_with_http_date(ctx):
    port, fid = ctx.bad.port("flaky"), unique("tdate")
    before = time.time()
    status, hdrs, _ = get(port, f"/429-date?id={fid}")
    after = time.time()
    when = email.utils.parsedate_to_datetime(hdrs["retry-after"]).timestamp()
    assert status == 429 and hdrs["retry-after"].endswith(" GMT"), hdrs
    assert before + 1 <= when <= after + 2, (when - before, hdrs)
    assert get(port, f"/429-date?id={fid}")[0] == 200


def test_flaky_reset_once_fail_n_and_503(ctx):
    port, fid = ctx.bad.port("flaky"), unique("treset")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET /reset-once?id={fid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = "reset"
    assert data == "reset", data
    assert get(port, f"/reset-once?id={fid}")[:3:2] == (200, b"ok\n")
    assert [e["status"] for e in ctx.bad.requests(count=2, mode="flaky", id=fid)] == [None, 200]

    fid = unique("tfail")
    got = [get(port, f"/fail-n?id={fid}&n=2&status=500")[0] for _ in range(4)]
    assert got == [500, 500, 200, 200], got
    fid = unique("tfail503")
    assert [get(port, f"/fail-n?id={fid}&n=1")[0] for _ in range(2)] == [503, 200]
    assert [get(port, "/503")[0] for _ in range(3)] == [503] * 3
    assert get(port, "/nope?id=1")[0] == 404


def test_count_log_overlap_and_rate(ctx):
    port = ctx.bad.port("count")
    a, b, c = (unique(n) + ".test" for n in "abc")  # the run shares one badserver
    conns = []
    try:
        # Three at once for a, two at once for b, each held 300 ms.
        for host in [a] * 3 + [b] * 2:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            conns.append(s)
            s.sendall(f"GET /?delay_ms=300 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        for s in conns:
            data = b""
            for _ in range(100):
                data += s.recv(4096)
                if data.endswith(b"ok\n"):
                    break
            assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data
    finally:
        for s in conns:
            s.close()
    # c: one connection, four requests one after another, then two more 1.2 s later.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for i in range(6):
            if i == 4:
                time.sleep(1.2)  # a gap in the traffic under test, not a wait for a server
            s.sendall(f"GET /?delay_ms=10 HTTP/1.1\r\nHost: {c}\r\n\r\n".encode())
            data = b""
            for _ in range(100):
                data += s.recv(4096)
                if data.endswith(b"ok\n"):
                    break
    log = [e for h, n in ((a, 3), (b, 2), (c, 6))
           for e in ctx.bad.requests(count=n, mode="count", host=h)]
    assert len(log) == 11, log
    assert all(e["end"] - e["start"] >= 0.3 for e in log if e["host"] != c), log
    assert len({e["conn"] for e in log if e["host"] == c}) == 1, log
    assert len({e["conn"] for e in log if e["host"] == a}) == 3, log
    assert {(e["method"], e["target"]) for e in log if e["host"] == c} == {
        ("GET", "/?delay_ms=10")}, log
    assert harness.max_overlap_per_host(log) == {a: 3, b: 2, c: 1}
    assert harness.max_starts_per_window(log) == {a: 3, b: 2, c: 4}


def test_count_helpers_edges():
    e = [{"host": "h", "start": 0.0, "end": 1.0}, {"host": "h", "start": 1.0, "end": 2.0},
         {"host": "h", "start": 1.5, "end": 1.6}, {"host": "g", "start": 5.0, "end": 9.0}]
    assert harness.max_overlap_per_host(e) == {"h": 2, "g": 1}  # an end frees its place
    assert harness.max_starts_per_window(e) == {"h": 2, "g": 1}  # 0.0 and 1.0: two windows
    assert harness.max_starts_per_window(e, window=1.51) == {"h": 3, "g": 1}


# ------------------------------------------------------ badserver: barelf, utf8


def test_barelf_bare_lf_lines(ctx):
    port = ctx.bad.port("barelf")
    out = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /chunked-lf HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out == (
        b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 12\n\nhello world\n"
        b"HTTP/1.1 200 OK\nContent-Type: text/plain\nTransfer-Encoding: chunked\n\n"
        b"5\r\nhello\r\n7\r\n world\n\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\nContent-Type: text/plain\nTransfer-Encoding: chunked\n"
        b"Connection: close\n\n5\nhello\n7\n world\n\n0\n\n"), out
    assert b"\r" not in out.split(b"\n\n")[0], out
    for path in ("/", "/chunked"):  # a lenient parser reads them as valid answers
        status, hdrs, body = get(port, path)
        assert (status, body) == (200, b"hello world\n"), (path, status, body)


def test_utf8_raw_header_bytes(ctx):
    port = ctx.bad.port("utf8")
    req = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw(port, req % b"/redirect")
    assert out.startswith(b"HTTP/1.1 301 Moved Permanently\r\nLocation: /caf\xc3\xa9\r\n"), out
    out = raw(port, req % b"/latin1")
    loc = out.split(b"\r\nLocation: ", 1)[1].split(b"\r\n", 1)[0]
    assert loc == b"/caf\xe9", out
    try:
        loc.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    assert not valid, loc
    out = raw(port, req % b"/ok")
    assert b"\r\nX-Name: caf\xc3\xa9\r\n" in out and out.endswith(b"\r\n\r\nok\n"), out
    for target in (b"/caf%C3%A9", b"/caf\xc3\xa9"):  # the target comes back as sent
        assert raw(port, req % target).endswith(b"\r\n\r\n" + target + b"\n"), target


# ------------------------------------------------------------------ dnsserver


def dns_query(port, name, qtype, qid=0x1234):
    """Sends one query to 127.0.0.1:port; (rcode, [addresses as text]) of the answer."""
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode("ascii") for l in name.split(".")) + b"\0"
    q += struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(q, ("127.0.0.1", port))
        msg = s.recv(4096)
    rid, flags, qd, an = struct.unpack_from("!HHHH", msg)
    assert rid == qid and flags & 0x8000, msg
    off = len(q)  # the question is echoed as sent
    addrs = []
    for _ in range(an):
        ptr, rtype, _, _, rdlen = struct.unpack_from("!HHHIH", msg, off)
        assert ptr == 0xc00c, msg  # a pointer to the question's name
        off += 12
        family = socket.AF_INET if rtype == 1 else socket.AF_INET6
        addrs.append(socket.inet_ntop(family, msg[off:off + rdlen]))
        off += rdlen
    return flags & 0xf, addrs


def test_dnsserver_several_records_in_order_and_punycode(ctx):
    names = {"multi.test": "127.0.0.2,127.0.0.1,::1",
             "split.test": ["127.0.0.9", "::2", "127.0.0.8"],
             "xn--bcher-kva.test": "127.0.0.5", "bücher.example": "127.0.0.6"}
    with harness.DnsServer(names, log=os.path.join(ctx.tmpdir, "dns.log")) as dns:
        assert dns_query(dns.port, "multi.test", 1) == (0, ["127.0.0.2", "127.0.0.1"])
        assert dns_query(dns.port, "multi.test", 28) == (0, ["::1"])
        assert dns_query(dns.port, "split.test", 1) == (0, ["127.0.0.9", "127.0.0.8"])
        assert dns_query(dns.port, "split.test", 28) == (0, ["::2"])
        assert dns_query(dns.port, "xn--bcher-kva.test", 1) == (0, ["127.0.0.5"])
        assert dns_query(dns.port, "XN--BCHER-KVA.Test", 1) == (0, ["127.0.0.5"])
        assert dns_query(dns.port, "xn--bcher-kva.test", 28) == (0, [])  # NOERROR, no AAAA
        assert dns_query(dns.port, "xn--bcher-kva.example", 1) == (0, ["127.0.0.6"])
        assert dns_query(dns.port, "other.test", 1) == (3, [])  # NXDOMAIN
        assert dns.queries()[:2] == [("multi.test", "A"), ("multi.test", "AAAA")]
        assert len(dns.queries()) == 9


# ------------------------------------------------ black hole, nginx on chosen addresses


def test_blackhole_drops_syns_beside_a_live_nginx(ctx):
    bh, ng = harness.nginx_beside_blackhole()
    try:
        port = bh.port
        assert ng.ports == [port] and bh.queued() == 1, (ng.ports, bh.queued())
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1.0)
        t0 = time.monotonic()
        try:
            s.connect(("127.0.0.3", port))
            outcome = "connected"
        except socket.timeout:
            outcome = "timeout"
        except OSError as e:
            outcome = e
        finally:
            s.close()
        assert outcome == "timeout" and time.monotonic() - t0 >= 1.0, outcome
        # Not a refusal: a non-blocking connect stays in progress, no error pending.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            assert s.connect_ex(("127.0.0.3", port)) == errno.EINPROGRESS
            _, writable, _ = select.select([], [s], [], 0.3)
            assert writable == [] and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        assert bh.queued() == 1, bh.queued()  # the dropped SYNs queued nothing
        # A closed port on another address is refused at once; nginx on the same port
        # number of 127.0.0.1 and ::1 answers.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            assert s.connect_ex(("127.0.0.4", port)) == errno.ECONNREFUSED
        assert get(port, "/")[:3:2] == (200, b"hello world\n")
        c = http.client.HTTPConnection("::1", port, timeout=5)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            assert (r.status, r.read()) == (200, b"hello world\n")
        finally:
            c.close()
    finally:
        ng.stop()
        bh.stop()


# ------------------------------------------------------------ nginx TLS worlds


def tls_client(ca, tickets=True, tls13=False):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(ca)
    if tls13:
        c.minimum_version = ssl.TLSVersion.TLSv1_3
    else:
        c.maximum_version = ssl.TLSVersion.TLSv1_2
    if not tickets:
        c.options |= ssl.OP_NO_TICKET  # offers no ticket extension: gets a session ID only
    return c


def tls_get(port, c, path, session=None):
    """One HTTPS GET over a fresh connection; (status line, session, session_reused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw_sock:
        with c.wrap_socket(raw_sock, server_hostname="127.0.0.1", session=session) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            out = harness.recv_until_close(s)
            return out.split(b"\r\n", 1)[0], s.session, s.session_reused


def test_nginx_tls12_tickets_only(ctx):
    ng = ctx.server("nginx-tls12-tickets", lambda: harness.nginx_tls12_tickets(ctx.pki))
    port, ca, tag = ng.ports[0], ctx.pki.ca_cert, unique("tickets")
    c = tls_client(ca)
    line, sess, reused = tls_get(port, c, f"/{tag}/1")
    assert (line, reused, sess.has_ticket) == (b"HTTP/1.1 200 OK", False, True)
    line, sess, reused = tls_get(port, c, f"/{tag}/2", session=sess)
    assert (line, reused) == (b"HTTP/1.1 200 OK", True)
    # Without a ticket there is only the session ID, and no cache to resume it from.
    c = tls_client(ca, tickets=False)
    line, sess, reused = tls_get(port, c, f"/{tag}/3")
    assert (reused, sess.has_ticket) == (False, False)
    line, sess, reused = tls_get(port, c, f"/{tag}/4", session=sess)
    assert (line, reused) == (b"HTTP/1.1 200 OK", False)
    try:
        tls_get(port, tls_client(ca, tls13=True), f"/{tag}/5")
        refused = False
    except ssl.SSLError:
        refused = True
    assert refused  # TLS 1.2 only
    log = ng.log_entries(contains=tag, count=4)
    assert [(e["uri"][-2:], e["protocol"], e["reused"]) for e in log] == [
        ("/1", "TLSv1.2", "."), ("/2", "TLSv1.2", "r"), ("/3", "TLSv1.2", "."),
        ("/4", "TLSv1.2", ".")], log


def redirects(ctx):
    return ctx.server("nginx-redirects", lambda: harness.redirect_world(ctx.pki))


def world_get(world, path, origin="http", method="GET", body=None, headers=None,
              chunked=False):
    """(status, headers, body) of one request to an origin of the redirect world."""
    port = world.ports[world.ORIGINS.index(origin)]
    if origin == "https":
        ca = ssl.create_default_context(cafile=world.pki.ca_cert)
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ca)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def test_redirect_world_codes_and_locations(ctx):
    w = redirects(ctx)
    tag = unique("codes")
    for code in harness.REDIRECT_CODES:
        status, hdrs, _ = world_get(w, f"/code/{code}?id={tag}")
        assert (status, hdrs["location"]) == (code, f"/target?id={tag}"), (code, hdrs)
        status, hdrs, _ = world_get(w, f"/cross-origin/{code}?id={tag}")
        assert (status, hdrs["location"]) == (
            code, f"http://127.0.0.1:{w.other_port}/target?id={tag}"), hdrs
        status, hdrs, _ = world_get(w, f"/cross-scheme/{code}?id={tag}")
        assert (status, hdrs["location"]) == (
            code, f"https://127.0.0.1:{w.https_port}/target?id={tag}"), hdrs
    assert world_get(w, "/absolute?id=1")[1]["location"] == w.url("/target?id=1")
    assert world_get(w, "/absolute", "https")[1]["location"] == w.url("/target", "https")
    for path, loc in (("/dir/relative", "target"), ("/dir/sub/up", "../target")):
        status, hdrs, _ = world_get(w, path + "?id=2")
        assert (status, hdrs["location"]) == (302, loc + "?id=2"), hdrs
        resolved = urllib.parse.urljoin(w.url(path), hdrs["location"])
        assert resolved == w.url("/dir/target?id=2"), resolved
    assert world_get(w, "/dir/target")[::2] == (200, b"target\n")
    assert world_get(w, "/loop-a?x")[1]["location"] == "/loop-b?x"
    assert world_get(w, "/loop-b?x")[1]["location"] == "/loop-a?x"
    # The other two origins answer their targets.
    assert world_get(w, f"/target?id={tag}", "other")[::2] == (200, b"target\n")
    assert world_get(w, f"/target?id={tag}", "https")[::2] == (200, b"target\n")
    ports = {e["port"] for e in w.log_entries(contains=f"/target?id={tag}", count=2)}
    assert ports == {w.other_port, w.https_port}, ports


def test_redirect_world_chain_of_12(ctx):
    w = redirects(ctx)
    path, hops = "/chain/12?c", 0
    for _ in range(30):
        status, hdrs, body = world_get(w, path)
        if status != 302:
            break
        path = hdrs["location"]
        hops += 1
    assert (hops, status, body, path) == (12, 200, b"chain end\n", "/chain/0?c")
    assert world_get(w, f"/chain/{harness.REDIRECT_CHAIN_MAX}")[1]["location"] == (
        f"/chain/{harness.REDIRECT_CHAIN_MAX - 1}")


def test_redirect_world_logs_bodies_and_credentials(ctx):
    w = redirects(ctx)
    tag = unique("post")
    status, hdrs, body = world_get(w, f"/post?id={tag}", method="POST", body=b"p" * 12345,
                                   headers={"Authorization": "Basic dTpw"})
    assert (status, body, hdrs["x-body-length"]) == (204, b"", "12345"), hdrs
    status, _, body = world_get(w, f"/target?id={tag}", "other", method="PUT",
                                body=iter([b"a" * 1000, b"b" * 500]), chunked=True)
    assert (status, body) == (200, b"target\n")
    status, hdrs, _ = world_get(w, f"/code/307?id={tag}", method="POST", body=b"q" * 10)
    assert (status, hdrs["location"]) == (307, f"/target?id={tag}")
    log = w.log_entries(contains=tag, count=3)
    assert len(log) == 3, log
    post, chunked, redir = log
    assert set(post) == set(harness.REDIRECT_LOG_FIELDS), post
    assert (post["method"], post["status"], post["content_length"], post["body_length"],
            post["authorization"], post["host"], post["port"], post["scheme"]) == (
        "POST", 204, 12345, 12345, "Basic dTpw", f"127.0.0.1:{w.http_port}", w.http_port,
        "http"), post
    assert post["request_length"] > 12345, post
    assert (chunked["method"], chunked["transfer_encoding"], chunked["body_length"],
            chunked["port"], chunked["authorization"]) == (
        "PUT", "chunked", 1500, w.other_port, None), chunked
    assert post["transfer_encoding"] is None, post
    assert (redir["status"], redir["location"], redir["body_length"]) == (
        307, f"/target?id={tag}", None), redir
