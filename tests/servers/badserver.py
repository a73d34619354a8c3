#!/usr/bin/python3
"""The misbehaving HTTP/1.1 server ringfetch is tested against: one asyncio process, one
loopback port per mode, from a correct keep-alive echo server to peers that hang, trickle,
reset, lie or never stop, two that break a TLS handshake (tls-close, tls-garbage), and four
for retries, politeness and lenient parsing:

  flaky   fails on purpose, keyed by ?id=X so that tests stay independent (attempts are
          counted per route and id; every answer has X-Attempt: N):
            /429-then-200?id=X[&after=S]  429 with Retry-After: S (default 1) the first time,
                                          then 200 "ok\n"
            /429-date?id=X                the same with an HTTP-date Retry-After 1-2 s ahead
            /reset-once?id=X              RST (SO_LINGER 0) instead of the first answer, then 200
            /fail-n?id=X&n=N&status=S     S (default 503) N times, then 200
            /503                          always 503
  count   answers 200 "ok\n" after ?delay_ms=N (default 50, at most 60000), so that a client's
          concurrency per Host shows in the log
  barelf  valid answers whose status and header lines end in a bare LF: 200 "hello world\n"
          by Content-Length on any path; /chunked the same body chunked (chunk lines CRLF),
          /chunked-lf chunked with bare LFs in the chunk lines too
  utf8    raw non-ASCII header bytes: /redirect 301 Location: /caf\xc3\xa9 (UTF-8 "/café"),
          /latin1 301 Location: /caf\xe9 (not UTF-8), /ok 200 X-Name: café (UTF-8); any
          other target 200 with the target's raw bytes and a newline as body

With --request-log FILE, flaky and count append one JSON line per request they answer
(flaky when it answers or resets; count once the answer is sent):
  flaky: {"mode", "route", "id", "attempt", "status" (null for a reset), "method", "t"}
  count: {"mode", "conn" (1, 2, ... per connection), "host" (the Host header), "method",
          "target", "start" (the request read in full), "end" (the answer sent)}
with times from time.monotonic(), the CLOCK_MONOTONIC seconds a test reads too.

Once every port listens it prints one JSON line {"echo": PORT, "hang": PORT, ...} to stdout.
Every loop here is bounded by a count and a deadline so a stuck client cannot keep it busy.
"""
import argparse
import asyncio
import email.utils
import http
import itertools
import json
import os
import random
import resource
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

MODES = ["echo", "hang", "trickle", "reset", "garbage", "bigheader", "badchunk", "close",
         "endless", "acceptreset", "tls-close", "tls-garbage", "flaky", "count", "barelf",
         "utf8"]

HEADER_LIMIT = 64 * 1024          # request head larger than this gets 431
READ_TIMEOUT = 60.0               # idle wait for a request (or the next one on keep-alive)
HOLD_LIMIT = 600.0                # longest a hanging or waiting socket is kept open
MAX_REQUESTS_PER_CONN = 1000000
MAX_BYTES_ROUTE = 1 << 30         # /bytes/N, /chunked/N, /close/N are capped at 1 GiB
WRITE_PIECE = 64 * 1024
ENDLESS_MAX_BYTES = 64 << 30
ENDLESS_MAX_SECONDS = 120.0
BIGHEADER_BYTES = 1 << 20
TLS_RECORD_MAX = (1 << 14) + 2048  # a TLSCiphertext fragment's limit (RFC 8446 5.2)
ECHO_BODY_KEEP = 1000
COUNT_MAX_DELAY_MS = 60000


class BadRequest(Exception):
    def __init__(self, status, why):
        super().__init__(why)
        self.status = status


class Request:
    __slots__ = ("method", "target", "version", "headers", "raw_headers")

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def wants_close(self):
        conn = self.headers.get("connection", "").lower()
        tokens = {t.strip() for t in conn.split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" not in tokens
        return "close" in tokens


async def read_head(reader, timeout=READ_TIMEOUT):
    """Reads one request line and header block; None on a clean EOF before any byte."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise BadRequest(400, "truncated request head")
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "request head too large")
    # RFC 9112 2.2: a server should ignore empty lines before the request line.
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "bad request line")
    req = Request()
    req.method, req.target, req.version = parts
    req.headers = {}
    req.raw_headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "bad header line")
        name = name.lower()
        value = value.strip(" \t")
        req.raw_headers.append((name, value))
        if name in req.headers:
            req.headers[name] += ", " + value
        else:
            req.headers[name] = value
    return req


async def read_body(reader, req, keep=ECHO_BODY_KEEP):
    """Reads the request body (Content-Length or chunked); returns (length, first bytes)."""
    kept = bytearray()
    total = 0
    deadline = time.monotonic() + HOLD_LIMIT

    def left():
        t = deadline - time.monotonic()
        if t <= 0:
            raise BadRequest(408, "body too slow")
        return t

    te = req.header("transfer-encoding", "").lower()
    if "chunked" in te:
        for _ in range(1 << 24):
            line = await asyncio.wait_for(reader.readuntil(b"\r\n"), left())
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, "bad chunk size")
            if size == 0:
                for _ in range(1000):  # trailer section
                    if await asyncio.wait_for(reader.readuntil(b"\r\n"), left()) == b"\r\n":
                        return total, bytes(kept)
                raise BadRequest(400, "too many trailers")
            await _consume(reader, size, kept, keep, left)
            total += size
            if await asyncio.wait_for(reader.readexactly(2), left()) != b"\r\n":
                raise BadRequest(400, "bad chunk end")
        raise BadRequest(400, "too many chunks")
    cl = req.header("content-length")
    if cl is None:
        return 0, b""
    try:
        n = int(cl)
    except ValueError:
        raise BadRequest(400, "bad content-length")
    if n < 0:
        raise BadRequest(400, "bad content-length")
    await _consume(reader, n, kept, keep, left)
    return n, bytes(kept)


async def _consume(reader, n, kept, keep, left):
    for _ in range(n + 1):  # every read returns at least one byte or raises
        if n <= 0:
            return
        data = await asyncio.wait_for(reader.read(min(n, WRITE_PIECE)), left())
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        if len(kept) < keep:
            kept += data[:keep - len(kept)]
        n -= len(data)
    if n > 0:
        raise BadRequest(400, "body read did not finish")


def reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def head_bytes(status, headers):
    out = [f"HTTP/1.1 {status} {reason(status)}"]
    out += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def gone(writer):
    return writer.transport.is_closing()


async def write_all(writer, data):
    writer.write(data)
    await writer.drain()


async def write_repeated(writer, byte, n):
    """Writes n copies of byte in pieces; stops early if the client went away."""
    piece = byte * WRITE_PIECE
    for _ in range(n // WRITE_PIECE + 1):
        if n <= 0 or gone(writer):
            return
        k = min(n, WRITE_PIECE)
        writer.write(piece[:k] if k < WRITE_PIECE else piece)
        await writer.drain()
        n -= k


async def hold_until_client_closes(reader, limit=HOLD_LIMIT):
    """Reads and discards until EOF, an error, or limit seconds."""
    deadline = time.monotonic() + limit
    for _ in range(1 << 24):
        t = deadline - time.monotonic()
        if t <= 0:
            return
        try:
            data = await asyncio.wait_for(reader.read(WRITE_PIECE), t)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            return
        if not data:
            return
        await asyncio.sleep(0)


def rst_close(writer):
    """Closes with SO_LINGER {on, 0}: the kernel sends RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def route_number(target, prefix):
    path = target.split("?", 1)[0]
    try:
        return int(path[len(prefix):])
    except ValueError:
        return None


# ---------------------------------------------------------------------- echo


async def echo_one(reader, writer, req):
    """Answers one request; returns False when the connection must close."""
    path = req.target.split("?", 1)[0]
    close = req.wants_close()
    is_head = req.method == "HEAD"

    if path == "/continue" or req.header("expect", "").lower() == "100-continue":
        await write_all(writer, b"HTTP/1.1 100 Continue\r\n\r\n")
    body_len, body_start = await read_body(reader, req)

    conn_hdr = [("Connection", "close")] if close else []
    status, ctype, body = 200, "application/json", None

    if path.startswith("/status/"):
        n = route_number(req.target, "/status/")
        if n is None or not 200 <= n <= 599:
            status, ctype, body = 400, "text/plain", b"bad status\n"
        else:
            status, ctype = n, "text/plain"
            body = b"" if n in (204, 304) else reason(n).encode()
        if n in (204, 304):
            await write_all(writer, head_bytes(status, conn_hdr))
            return not close
    elif path.startswith("/bytes/"):
        n = route_number(req.target, "/bytes/")
        if n is None or not 0 <= n <= MAX_BYTES_ROUTE:
            status, ctype, body = 400, "text/plain", b"bad length\n"
        else:
            hdr = [("Content-Type", "application/octet-stream"), ("Content-Length", n)]
            await write_all(writer, head_bytes(200, hdr + conn_hdr))
            if not is_head:
                await write_repeated(writer, b"x", n)
            return not close
    elif path.startswith("/chunked/"):
        n = route_number(req.target, "/chunked/")
        if n is None or not 0 <= n <= MAX_BYTES_ROUTE:
            status, ctype, body = 400, "text/plain", b"bad length\n"
        else:
            hdr = [("Content-Type", "application/octet-stream"),
                   ("Transfer-Encoding", "chunked"), ("Trailer", "X-Checksum")]
            await write_all(writer, head_bytes(200, hdr + conn_hdr))
            if not is_head:
                await write_chunked(writer, n)
            return not close
    elif path.startswith("/close/"):
        n = route_number(req.target, "/close/")
        if n is None or not 0 <= n <= MAX_BYTES_ROUTE:
            status, ctype, body = 400, "text/plain", b"bad length\n"
        else:
            # No length: the body ends where the connection does (RFC 9112 6.3 rule 8).
            hdr = [("Content-Type", "application/octet-stream"), ("Connection", "close")]
            await write_all(writer, head_bytes(200, hdr))
            if not is_head:
                await write_repeated(writer, b"x", n)
            return False
    elif path == "/continue":
        ctype, body = "text/plain", b"ok"
    elif path == "/redirect":
        hdr = [("Location", "/bytes/5"), ("Content-Length", 0)]
        await write_all(writer, head_bytes(302, hdr + conn_hdr))
        return not close
    elif path == "/server":
        hdr = [("Server", "badserver"), ("Content-Type", "text/plain"), ("Content-Length", 3)]
        await write_all(writer, head_bytes(200, hdr + conn_hdr) + (b"" if is_head else b"ok\n"))
        return not close

    if body is None:
        body = json.dumps({
            "method": req.method,
            "target": req.target,
            "headers": req.headers,
            "body_len": body_len,
            "body": body_start.decode("utf-8", "replace"),
        }).encode()
    hdr = [("Content-Type", ctype), ("Content-Length", len(body))]
    await write_all(writer, head_bytes(status, hdr + conn_hdr) + (b"" if is_head else body))
    return not close


async def write_chunked(writer, n):
    """n bytes of 'y' in chunks of varying size, one with an extension, then a trailer."""
    sizes = [1, 9, 100, 3000, 16384]
    i = 0
    for _ in range(n // 1 + 1):
        if n <= 0 or gone(writer):
            break
        k = min(n, sizes[i % len(sizes)])
        ext = ";ext=1" if i == 1 else ""
        writer.write(b"%x%s\r\n" % (k, ext.encode()) + b"y" * k + b"\r\n")
        if i % 16 == 15:
            await writer.drain()
        n -= k
        i += 1
    writer.write(b"0\r\nX-Checksum: none\r\n\r\n")
    await writer.drain()


async def serve_echo(reader, writer, args):
    for _ in range(MAX_REQUESTS_PER_CONN):
        try:
            req = await read_head(reader)
        except asyncio.TimeoutError:
            return
        except BadRequest as e:
            body = (str(e) + "\n").encode()
            hdr = [("Content-Type", "text/plain"), ("Content-Length", len(body)),
                   ("Connection", "close")]
            await write_all(writer, head_bytes(e.status, hdr) + body)
            return
        if req is None:
            return
        try:
            keep = await echo_one(reader, writer, req)
        except BadRequest as e:
            body = (str(e) + "\n").encode()
            hdr = [("Content-Type", "text/plain"), ("Content-Length", len(body)),
                   ("Connection", "close")]
            await write_all(writer, head_bytes(e.status, hdr) + body)
            return
        if not keep:
            return


# --------------------------------------------------------------- fault modes


async def read_request_quietly(reader):
    """Reads one request (head and body) for the fault modes; False if none came."""
    try:
        req = await read_head(reader)
        if req is None:
            return False
        await read_body(reader, req, keep=0)
        return True
    except (BadRequest, asyncio.TimeoutError):
        return True


async def serve_hang(reader, writer, args):
    await hold_until_client_closes(reader)


async def serve_trickle(reader, writer, args):
    if not await read_request_quietly(reader):
        return
    body = b"abcdefghijklmnopqrst"
    resp = head_bytes(200, [("Content-Type", "text/plain"), ("Content-Length", len(body))]) + body
    for i in range(len(resp)):
        if gone(writer):
            return
        await write_all(writer, resp[i:i + 1])
        if i + 1 < len(resp):
            await asyncio.sleep(args.trickle_interval)
    await hold_until_client_closes(reader, 30.0)


async def serve_reset(reader, writer, args):
    if not await read_request_quietly(reader):
        return
    await write_all(writer, head_bytes(200, [("Content-Type", "application/octet-stream"),
                                              ("Content-Length", 100000)]) + b"r" * 1000)
    # Let the bytes reach the peer before the RST, so the reset lands mid-body.
    await asyncio.sleep(0.05)
    rst_close(writer)


async def serve_garbage(reader, writer, args):
    if not await read_request_quietly(reader):
        return
    await write_all(writer, args.garbage)


async def serve_bigheader(reader, writer, args):
    if not await read_request_quietly(reader):
        return
    await write_all(writer, b"HTTP/1.1 200 OK\r\nX-Big: ")
    await write_repeated(writer, b"a", BIGHEADER_BYTES)
    if not gone(writer):
        await write_all(writer, b"\r\nContent-Length: 2\r\n\r\nok")


async def serve_badchunk(reader, writer, args):
    if not await read_request_quietly(reader):
        return
    await write_all(writer, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    await hold_until_client_closes(reader, 30.0)


async def serve_close(reader, writer, args):
    await read_request_quietly(reader)


async def serve_endless(reader, writer, args):
    if not await read_request_quietly(reader):
        return
    await write_all(writer, head_bytes(200, [("Content-Type", "application/octet-stream"),
                                              ("Connection", "close")]))
    piece = b"e" * WRITE_PIECE
    deadline = time.monotonic() + ENDLESS_MAX_SECONDS
    for _ in range(ENDLESS_MAX_BYTES // WRITE_PIECE):
        if gone(writer) or time.monotonic() > deadline:
            return
        writer.write(piece)
        await writer.drain()


async def serve_acceptreset(reader, writer, args):
    rst_close(writer)


async def read_tls_record(reader):
    """Reads one TLS record (the ClientHello, from a TLS client); False if none came."""
    try:
        head = await asyncio.wait_for(reader.readexactly(5), READ_TIMEOUT)
        n = min(int.from_bytes(head[3:5], "big"), TLS_RECORD_MAX)
        await asyncio.wait_for(reader.readexactly(n), READ_TIMEOUT)
    except (asyncio.IncompleteReadError, asyncio.TimeoutError):
        return False
    return True


async def serve_tls_close(reader, writer, args):
    """Takes the ClientHello, then closes (FIN) without a ServerHello."""
    await read_tls_record(reader)


async def serve_tls_garbage(reader, writer, args):
    """Answers the ClientHello with bytes that are no TLS record (content type 0), then
    waits for the client to give up: the bytes are the only fault."""
    if not await read_tls_record(reader):
        return
    await write_all(writer, args.garbage)
    await hold_until_client_closes(reader, 30.0)


# ------------------------------------------------ retries, politeness, lenient parsing


def log_request(args, entry):
    """Appends one JSON line to --request-log, flushed at once so a test sees it."""
    if args.request_log is not None:
        args.request_log.write(json.dumps(entry) + "\n")
        args.request_log.flush()


def query_args(target):
    """{name: last value} of the target's query string."""
    return {k: v[-1] for k, v in
            urllib.parse.parse_qs(target.partition("?")[2], keep_blank_values=True).items()}


def simple_answer(status, body, close, extra=(), is_head=False):
    hdr = list(extra) + [("Content-Type", "text/plain"), ("Content-Length", len(body))]
    if close:
        hdr.append(("Connection", "close"))
    return head_bytes(status, hdr) + (b"" if is_head else body)


async def serve_requests(reader, writer, answer):
    """The keep-alive loop of the modes below: each request (head and body read) goes to
    answer(req, body_len), which writes the answer and returns False to close."""
    for _ in range(MAX_REQUESTS_PER_CONN):
        try:
            req = await read_head(reader)
            if req is None:
                return
            body_len, _ = await read_body(reader, req, keep=0)
        except asyncio.TimeoutError:
            return
        except BadRequest as e:
            await write_all(writer, simple_answer(e.status, (str(e) + "\n").encode(), True))
            return
        if not await answer(req, body_len) or req.wants_close():
            return


def flaky_status(route, attempt, q):
    """(status, extra headers) for one attempt at a flaky route; status None resets;
    raises BadRequest for a route or parameter it does not know."""
    if route == "/503":
        return 503, []
    if route in ("/429-then-200", "/429-date"):
        if attempt > 1:
            return 200, []
        if route == "/429-date":
            # Retry-After's HTTP-date has whole seconds: now + 2 s cut to the second is
            # 1 to 2 s ahead.
            return 429, [("Retry-After", email.utils.formatdate(time.time() + 2, usegmt=True))]
        after = q.get("after", "1")
        if not after.isdigit():
            raise BadRequest(400, "bad after")
        return 429, [("Retry-After", after)]
    if route == "/reset-once":
        return (None if attempt == 1 else 200), []
    if route == "/fail-n":
        n, status = q.get("n", "1"), q.get("status", "503")
        if not n.isdigit() or not status.isdigit() or not 200 <= int(status) <= 599:
            raise BadRequest(400, "bad n or status")
        return (int(status) if attempt <= int(n) else 200), []
    raise BadRequest(404, "no such flaky route")


async def serve_flaky(reader, writer, args):
    async def answer(req, body_len):
        route = req.target.partition("?")[0]
        q = query_args(req.target)
        key = (route, q.get("id", ""))
        try:
            status, extra = flaky_status(route, args.attempts.get(key, 0) + 1, q)
        except BadRequest as e:
            await write_all(writer, simple_answer(e.status, (str(e) + "\n").encode(),
                                                  req.wants_close()))
            return True
        attempt = args.attempts[key] = args.attempts.get(key, 0) + 1
        log_request(args, {"mode": "flaky", "route": route, "id": key[1], "attempt": attempt,
                           "status": status, "method": req.method, "t": time.monotonic()})
        if status is None:
            rst_close(writer)
            return False
        body = b"ok\n" if status == 200 else (reason(status) + "\n").encode()
        await write_all(writer, simple_answer(status, body, req.wants_close(),
                                              extra + [("X-Attempt", attempt)],
                                              req.method == "HEAD"))
        return True
    await serve_requests(reader, writer, answer)


async def serve_count(reader, writer, args):
    conn = next(args.conn_ids)

    async def answer(req, body_len):
        start = time.monotonic()  # the head and body are in: the request has started
        delay = query_args(req.target).get("delay_ms", "50")
        if not delay.isdigit() or int(delay) > COUNT_MAX_DELAY_MS:
            await write_all(writer, simple_answer(400, b"bad delay_ms\n", req.wants_close()))
            return True
        await asyncio.sleep(int(delay) / 1000.0)
        await write_all(writer, simple_answer(200, b"ok\n", req.wants_close(),
                                              is_head=req.method == "HEAD"))
        log_request(args, {"mode": "count", "conn": conn, "host": req.header("host"),
                           "method": req.method, "target": req.target, "start": start,
                           "end": time.monotonic()})
        return True
    await serve_requests(reader, writer, answer)


async def serve_barelf(reader, writer, args):
    async def answer(req, body_len):
        path = req.target.partition("?")[0]
        close = b"Connection: close\n" if req.wants_close() else b""
        if path == "/chunked":
            head = b"HTTP/1.1 200 OK\nContent-Type: text/plain\nTransfer-Encoding: chunked\n"
            body = b"5\r\nhello\r\n7\r\n world\n\r\n0\r\n\r\n"
        elif path == "/chunked-lf":
            head = b"HTTP/1.1 200 OK\nContent-Type: text/plain\nTransfer-Encoding: chunked\n"
            body = b"5\nhello\n7\n world\n\n0\n\n"
        else:
            head = b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 12\n"
            body = b"hello world\n"
        await write_all(writer, head + close + b"\n" + (b"" if req.method == "HEAD" else body))
        return True
    await serve_requests(reader, writer, answer)


def utf8_raw(text):
    """text's UTF-8 bytes as the str that head_bytes() turns back into them (latin-1)."""
    return text.encode("utf-8").decode("latin-1")


async def serve_utf8(reader, writer, args):
    async def answer(req, body_len):
        path = req.target.partition("?")[0]
        close, is_head = req.wants_close(), req.method == "HEAD"
        if path in ("/redirect", "/latin1"):
            # /latin1: the single byte 0xe9, "é" in Latin-1 and no UTF-8 at all.
            loc = utf8_raw("/café") if path == "/redirect" else "/caf\xe9"
            out = simple_answer(301, b"", close, [("Location", loc)])
        elif path == "/ok":
            out = simple_answer(200, b"ok\n", close, [("X-Name", utf8_raw("café"))], is_head)
        else:
            # read_head() decoded the request as latin-1: this gives back its bytes.
            out = simple_answer(200, req.target.encode("latin-1") + b"\n", close,
                                is_head=is_head)
        await write_all(writer, out)
        return True
    await serve_requests(reader, writer, answer)


HANDLERS = {m: globals()["serve_" + m.replace("-", "_")] for m in MODES}


# -------------------------------------------------------------------- server


class Server:
    def __init__(self, args):
        self.args = args
        self.writers = set()
        self.stop = None

    def handler(self, mode):
        fn = HANDLERS[mode]

        async def handle(reader, writer):
            self.writers.add(writer)
            try:
                await fn(reader, writer, self.args)
            except (ConnectionError, OSError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError, asyncio.TimeoutError, BadRequest):
                pass
            except asyncio.CancelledError:
                writer.transport.abort()
                raise
            finally:
                self.writers.discard(writer)
                if not writer.transport.is_closing():
                    writer.close()
        return handle

    async def run(self):
        loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        loop.set_exception_handler(self._quiet)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        if self.args.exit_on_stdin_eof:
            watch_stdin(loop, self.stop)

        servers, ports = [], {}
        for i, mode in enumerate(MODES):
            port = self.args.port_base + i if self.args.port_base else 0
            try:
                srv = await asyncio.start_server(self.handler(mode), "127.0.0.1", port,
                                                 limit=HEADER_LIMIT, backlog=4096,
                                                 reuse_address=True)
            except OSError as e:
                for s in servers:
                    s.close()
                sys.stderr.write(f"badserver: cannot listen on 127.0.0.1:{port} ({mode}): "
                                 f"{e.strerror}\n")
                return 1
            servers.append(srv)
            ports[mode] = srv.sockets[0].getsockname()[1]
        sys.stdout.write(json.dumps(ports) + "\n")
        sys.stdout.flush()

        try:
            await asyncio.wait_for(self.stop.wait(), self.args.lifetime)
        except asyncio.TimeoutError:
            pass
        for srv in servers:
            srv.close()
        for w in list(self.writers):
            w.transport.abort()
        return 0

    @staticmethod
    def _quiet(loop, context):
        exc = context.get("exception")
        if isinstance(exc, (ConnectionError, OSError, asyncio.CancelledError)):
            return
        loop.default_exception_handler(context)


def watch_stdin(loop, stop):
    """Sets stop when stdin reaches EOF; a thread, since stdin may be a file epoll refuses."""
    def reader():
        deadline = time.monotonic() + 7 * 86400
        for _ in range(1 << 30):
            try:
                data = os.read(0, 4096)
            except OSError:
                break
            if not data or time.monotonic() > deadline:
                break
        loop.call_soon_threadsafe(stop.set)
    threading.Thread(target=reader, daemon=True).start()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port-base", type=int, default=0,
                    help="mode i listens on PORT_BASE+i, in the order " + ",".join(MODES)
                    + "; default: free ports")
    ap.add_argument("--trickle-interval", type=float, default=1.0,
                    help="seconds between the bytes of a trickle response (default 1.0)")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the garbage bytes")
    ap.add_argument("--lifetime", type=float, default=6 * 3600,
                    help="exit after this many seconds at the latest (default 6 h)")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="exit when stdin reaches end of file")
    ap.add_argument("--request-log", default=None, metavar="FILE",
                    help="append a JSON line per request the flaky and count modes answer")
    args = ap.parse_args()
    if args.trickle_interval < 0 or args.lifetime <= 0:
        ap.error("intervals must be positive")
    rng = random.Random(args.seed)
    garbage = bytearray(rng.getrandbits(8) for _ in range(200))
    garbage[0:4] = b"\x00\xffGB"  # no status line, no TLS record (type 0), whatever the seed
    args.garbage = bytes(garbage)
    args.attempts = {}  # flaky: (route, id) -> requests answered so far
    args.conn_ids = itertools.count(1)
    args.request_log = open(args.request_log, "a") if args.request_log else None
    raise_nofile()
    try:
        return asyncio.run(Server(args).run())
    except KeyboardInterrupt:
        return 0
    finally:
        if args.request_log is not None:
            args.request_log.close()


if __name__ == "__main__":
    sys.exit(main())
