"""The test servers themselves: badserver's modes and the private nginx behave as the
engine's tests assume, checked with plain sockets and http.client."""
import errno
import http.client
import json
import resource
import socket
import time

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
