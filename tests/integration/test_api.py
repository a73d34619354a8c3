"""The C API keeps its word: programs written against include/ringfetch.h alone (the sources
are tests/api/*.c) run against the real nginx, the badserver and a logging nginx, and each
asserts exact values. Run them under the sanitizer that catches what they look for:

  build (plain)         behaviour and the timing and memory bounds
  build-san (ASan/UBSan)  use-after-free of what the caller passed, over-reads of short structs
  build-tsan (TSan)       races between the engine's threads, rf_cancel() and destroy
  valgrind              `make test-valgrind`: RF_API_WRAP prefixes every program's command

Under a sanitizer or valgrind the heavy runs are smaller and the time and memory bounds are
reported rather than asserted (the checks of values stay).
"""
import os
import re
import socket
import subprocess
import time

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API_DIR = os.path.join(ROOT, "tests", "api")
API_MD = os.path.join(ROOT, "docs", "api.md")
TIMEOUT = 120

# `make test-valgrind` sets RF_API_WRAP="valgrind --error-exitcode=1 ..."; every program
# then runs under it.
WRAP = os.environ.get("RF_API_WRAP", "").split()


# ------------------------------------------------------------------------ building


def build_kind(ctx):
    """"tsan", "asan" (ASan and/or UBSan), "valgrind" or "plain": what this run checks."""
    if WRAP:
        return "valgrind"
    flags = " ".join(ctx.sanitize_flags)
    return "tsan" if "thread" in flags else "asan" if flags else "plain"


def slow(ctx):
    """Sanitizers and valgrind make everything slower: bounds of time and memory are off."""
    return build_kind(ctx) != "plain"


def scaled(ctx, n, valgrind_n=None):
    """n requests normally, fewer where each costs far more (valgrind, TSan)."""
    kind = build_kind(ctx)
    if kind == "valgrind":
        return valgrind_n if valgrind_n is not None else max(1, n // 50)
    if kind == "tsan":
        return max(1, n // 5)
    return n


def rings(ctx, *counts):
    """The ring-thread counts a test runs with: all of them, but only 1 under valgrind,
    whose io_uring_enter (3.19) keeps its big lock while it waits, so one thread of an
    engine waiting in the ring stops all the others."""
    return [1] if build_kind(ctx) == "valgrind" else list(counts)


def compile_program(ctx, name, source=None):
    """tests/api/NAME.c (or source) built against the build's libringfetch.a by
    ctx.compile_c(), with tests/api/api.h beside it."""
    if source is None:
        with open(os.path.join(API_DIR, name + ".c")) as f:
            source = f.read()
    with open(os.path.join(API_DIR, "api.h")) as f, \
            open(os.path.join(ctx.tmpdir, "api.h"), "w") as out:
        out.write(f.read())
    return ctx.compile_c(name, source)


_built = {}


def program(ctx, name):
    """The program tests/api/NAME.c, built once per run."""
    if name not in _built or not os.path.exists(_built[name]):
        _built[name] = compile_program(ctx, name)
    return _built[name]


def program_env():
    """The environment a test program runs in: a TSan race report fails it."""
    env = dict(os.environ)
    env.setdefault("TSAN_OPTIONS", "halt_on_error=1")
    return env


def run(ctx, name, args, timeout=60, expect_rc=0):
    """Runs program NAME with args (under RF_API_WRAP); stdout. Fails on another exit
    status, showing stderr (a sanitizer's report lands there)."""
    exe = program(ctx, name)
    cmd = WRAP + [exe] + [str(a) for a in args]
    if WRAP:
        timeout *= 10
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=program_env())
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{name} {' '.join(map(str, args))[:300]}: still running after "
                             f"{timeout} s; stderr: {(e.stderr or b'')[-3000:]!r}")
    assert r.returncode == expect_rc, \
        f"{name} {' '.join(map(str, args))[:300]}: exit {r.returncode}\n" \
        f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-6000:]}"
    return r.stdout


def fields(out, key):
    """The numbers after `key` on the line of stdout that starts with it."""
    for line in out.splitlines():
        if line.startswith(key + " ") or line == key:
            return [float(x) if "." in x else int(x) for x in line.split()[1:]]
    raise AssertionError(f"no line {key!r} in {out!r}")


# ------------------------------------------------------------------ the logging nginx

LOG_SEP = "|"


class LoggingNginx(harness.Nginx):
    """An nginx whose access log shows what each request carried: one line
    `$request_uri|$http_x_id|$request_method|$request_body` per request to any path.

      /id/...      the request (and its body: proxied to a sink) is logged; 204 from the sink
      /long        200 "long\\n" with ten headers X-Long-0..9 of 3900 bytes each, so one
                   response head is 39 KB and a header straddles every 16 KB recv
      /            200 "hello world\\n" for any other path

    .entries(prefix, count) reads the log lines whose URI starts with prefix."""

    LONG_HEADERS = 10
    LONG_LEN = 3900

    def __init__(self):
        super().__init__(n_ports=2, access_log=True)

    @staticmethod
    def long_value(i):
        """The value of X-Long-i: 3900 bytes, different for each i."""
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(alphabet[(i * 7 + k) % len(alphabet)]
                       for k in range(LoggingNginx.LONG_LEN))

    def _write_config(self):
        prefix = self.prefix
        port, sink = self.ports
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(prefix, "tmp", sub), exist_ok=True)
        lines = ["user root;"] if os.geteuid() == 0 else []
        lines += [
            "worker_processes 1;", f"pid {prefix}/nginx.pid;",
            f"error_log {prefix}/error.log warn;",
            "events {", "    worker_connections 4096;", "}",
            "http {",
            "    log_format api '$request_uri|$http_x_id|$request_method|$request_body';",
            f"    access_log {self.access_log_path} api;",
            "    server_tokens off;",
            "    keepalive_requests 10000000;", "    keepalive_timeout 75s;",
            "    client_body_buffer_size 64k;", "    client_body_in_single_buffer on;",
        ]
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            key = "client_body" if sub == "body" else sub
            lines.append(f"    {key}_temp_path {prefix}/tmp/{sub};")
        lines += [
            # $request_body is set only where nginx reads the body for a proxy: a sink
            # behind kept-alive upstream connections (else 100,000 requests would leave
            # 100,000 loopback connections in TIME_WAIT).
            f"    upstream sink {{ server 127.0.0.1:{sink}; keepalive 64; }}",
            "    server {",
            f"        listen 127.0.0.1:{port} backlog=4096;",
            "        location /id/ {",
            "            proxy_pass http://sink;",
            "            proxy_http_version 1.1;",
            '            proxy_set_header Connection "";',
            "        }",
            "        location = /long {",
            "            default_type text/plain;",
        ]
        for i in range(self.LONG_HEADERS):
            lines.append(f"            add_header X-Long-{i} {self.long_value(i)};")
        lines += [
            '            return 200 "long\\n";',
            "        }",
            "        location / {",
            "            default_type text/plain;",
            '            return 200 "hello world\\n";',
            "        }",
            "    }",
            "    server {",
            f"        listen 127.0.0.1:{sink} backlog=4096;",
            "        access_log off;",
            "        keepalive_requests 10000000;",
            "        location / { return 204; }",
            "    }",
            "}",
        ]
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def read_log(self):
        try:
            with open(self.access_log_path) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def entries(self, prefix, count=0, timeout=10.0):
        """[(uri, x_id, method, body)] of the requests whose URI starts with prefix; waits up
        to timeout s for count of them (nginx logs just after answering)."""
        deadline = time.monotonic() + timeout
        out = []
        for _ in range(100000):
            out = [tuple(l.split(LOG_SEP, 3)) for l in self.read_log() if l.startswith(prefix)]
            if len(out) >= count or time.monotonic() >= deadline:
                return out
            time.sleep(0.05)
        return out


def logging_nginx(ctx):
    return ctx.server("api-logging-nginx", lambda: LoggingNginx().start())


def body_for(n):
    """What tests/api/lifetimes.c sends as request n's body."""
    return f"n={n};" + chr(ord("a") + n % 26) * (n % 61)


def check_id_log(ng, tag, count, methods):
    """Every request 0..count-1 of a lifetimes run arrived exactly once, intact: URL, X-Id,
    method and body all say the same number."""
    prefix = f"/id/{tag}?n="
    entries = ng.entries(prefix, count)
    seen = {}
    bad = []
    for uri, xid, method, body in entries:
        n = int(uri[len(prefix):])
        seen[n] = seen.get(n, 0) + 1
        if (xid, method, body) != (str(n), methods(n), body_for(n)):
            bad.append((uri, xid, method, body))
    assert not bad, (len(bad), bad[:5])
    dups = {n: k for n, k in seen.items() if k != 1}
    assert not dups, list(dups.items())[:10]
    missing = [n for n in range(count) if n not in seen]
    assert not missing and len(seen) == count, (len(missing), missing[:10], len(seen))


# ------------------------------------------------------- 1. what the caller passed


def test_pull_reuses_one_buffer(ctx):
    """A pull callback that rewrites ONE set of buffers (URL, method, X-Id, body) for every
    request: 100,000 requests at concurrency 200 (one ring, then two threads) each arrive
    exactly once with their own number in all four."""
    ng = logging_nginx(ctx)
    runs = ((1, scaled(ctx, 100000, 2000)), (2, scaled(ctx, 20000, 500)))
    for threads, n in runs[:len(rings(ctx, 1, 2))]:
        tag = f"reuse-t{threads}"
        out = run(ctx, "lifetimes", ["reuse", ng.url(f"/id/{tag}"), n, 200, threads],
                  timeout=300)
        assert out == f"ok {n}\n", out
        check_id_log(ng, tag, n, lambda k: "POST" if k % 2 else "PUT")


test_pull_reuses_one_buffer.timeout = 600


def test_pull_frees_previous_request(ctx):
    """The pull callback frees (after scribbling over) the previous request's URL, method,
    header array, header strings and body at each call: nothing is read after that (ASan
    reports a use-after-free; without it, the scribbles would reach the server)."""
    ng = logging_nginx(ctx)
    n = scaled(ctx, 20000, 1000)
    for threads in rings(ctx, 1, 3):
        tag = f"free-t{threads}"
        out = run(ctx, "lifetimes", ["free", ng.url(f"/id/{tag}"), n, 200, threads],
                  timeout=300)
        assert out == f"ok {n}\n", out
        check_id_log(ng, tag, n, lambda k: "POST")


test_pull_frees_previous_request.timeout = 600


def test_submit_frees_right_after_the_call(ctx):
    """rf_submit() of requests whose every byte is scribbled over and freed right after the
    call; and with RF_REQ_STATIC, kept until the result callback frees them."""
    ng = logging_nginx(ctx)
    n = scaled(ctx, 20000, 1000)
    for mode in ("submit", "static"):
        for threads in rings(ctx, 1, 2):
            tag = f"{mode}-t{threads}"
            out = run(ctx, "lifetimes", [mode, ng.url(f"/id/{tag}"), n, 200, threads],
                      timeout=300)
            assert out == f"ok {n}\n", out
            check_id_log(ng, tag, n, lambda k: "POST")


test_submit_frees_right_after_the_call.timeout = 600


# ------------------------------------------------------------- 2. calls from callbacks


def test_calls_from_callbacks_are_refused(ctx):
    """Inside the result, pull, on_header and on_body callbacks: rf_submit, rf_run,
    rf_resume and rf_engine_destroy return RF_ERR_RECURSIVE and rf_step -RF_ERR_RECURSIVE
    (also with a negative timeout: it must not wait), and change nothing: the run then
    completes normally. rf_cancel() from on_result, on_body and pull ends the rest as
    cancelled at once. One ring, then four (callbacks on the ring threads)."""
    for threads in rings(ctx, 1, 4):
        out = run(ctx, "recursion", [threads, ctx.nginx.url("/"), ctx.bad.url("hang")])
        assert out == "ok\n", (threads, out)


# ------------------------------------------------------------------------ 3, 6. threads


def test_engine_driven_from_other_threads(ctx):
    """An engine created in one thread and run from another (results arrive on that one),
    and one that a pool of four threads takes turns at (a mutex and a turn number pass it
    on): every result is right and in order, with one ring and with three. Run under
    ThreadSanitizer it also proves the hand-overs race-free."""
    url = ctx.nginx.url("/")
    n = scaled(ctx, 3000, 1000)
    for threads in rings(ctx, 1, 3):
        assert run(ctx, "threads", ["other", url, n, threads]) == "ok\n"
        out = run(ctx, "threads", ["pool", url, n, threads, 4])
        # Every pool thread drove it; results came out on at least two of them.
        assert re.fullmatch(r"pool 4 drove 4 delivered [234]\nok\n", out), out


def test_cancel_and_destroy_while_rings_run(ctx):
    """With four ring threads: rf_cancel() from another thread and from a signal handler
    while requests run ends every hanging one as cancelled at once; rf_engine_destroy()
    while the rings are busy (and before any rf_step) returns RF_OK. Under TSan: no race."""
    ok, hang = ctx.nginx.url("/"), ctx.bad.url("hang")
    n = scaled(ctx, 400, 40)
    n -= n % 4
    if build_kind(ctx) == "valgrind":
        ctx.skip("valgrind 3.19 runs no other thread and delivers no signal while a thread "
                 "waits in io_uring_enter (see rings())")
    for mode in ("cancel", "signal", "destroy"):
        assert run(ctx, "threads", [mode, ok, hang, n, 4]) == "ok\n", mode


# ---------------------------------------------------------------- 4. no added lines


def test_crlf_never_reaches_the_server(ctx):
    """A user_agent with CR, LF or another control character fails rf_engine_create() with
    RF_ERR_INVALID_ARG, *out NULL and "user_agent" in cfg.errbuf. Methods and headers with
    CR or LF, a header without a colon or without a name: those requests (from rf_submit()
    and from the pull callback) end invalid_argument without a connection, and the server's
    log has the good requests only - no "injected" anywhere."""
    ng = logging_nginx(ctx)
    out = run(ctx, "inject", [ng.url("/id/inject")])
    assert out == "ok 8 28\n", out
    good = ng.entries("/id/inject?k=", 8)
    methods = {0: "GET", 7: "PUT", 16: "PATCH", 17: "M-SEARCH"}
    want = sorted((f"/id/inject?k={k}", f"good-{k}", methods[k % 18], "-")
                  for k in (0, 7, 16, 17, 18, 25, 34, 35))
    assert sorted(good) == want, sorted(good)
    time.sleep(0.2)  # anything sent after the good ones would be logged by now
    log = ng.read_log()
    assert not [l for l in log if "inject-bad" in l or "injected" in l], \
        [l for l in log if "inject" in l][:20]


# ------------------------------------------------------------------------ 5. memory


def test_kept_bodies_do_not_pile_up(ctx):
    """keep_body 65536, concurrency 10, 8,000 URLs of 64 KiB each checked byte by byte, the
    default window: the program's peak RSS stays under 32 MB (500 MB of bodies went by)."""
    n = scaled(ctx, 8000, 200)
    # Measured by GNU time, not the program's getrusage(): see harness.run_peak_rss.
    r, rss_kb = harness.run_peak_rss(WRAP + [program(ctx, "memory"),
                                             ctx.nginx.url("/static/64k.bin"), str(n), "10"],
                                     capture_output=True, text=True, timeout=1800 if WRAP
                                     else 180, stdin=subprocess.DEVNULL, env=program_env())
    out = r.stdout
    assert r.returncode == 0, r.stderr[-4000:]
    assert out.splitlines()[0] == f"ok {n}", out
    print(out, f"peak RSS {rss_kb} KiB (GNU time)")
    if slow(ctx):
        ctx.skip(f"the bodies are right; peak RSS {rss_kb} KiB is not bounded under "
                 f"{build_kind(ctx)} (shadow memory, quarantine)")
    assert rss_kb < 32 * 1024, out


test_kept_bodies_do_not_pile_up.timeout = 300


# ------------------------------------------------------- 7. creation, sizes and the ABI


def test_sizes_old_structs_and_ca_file(ctx):
    """rf_config_init, RF_REQUEST_INIT, rf_bench_config_init and rf_get_stats set `size`.
    A program built against an older header (rf_config a prefix ending before
    default_scheme, or before on_header, the smallest taken; rf_request ending before the
    per-request options; rf_stats before in_flight) works, each short struct placed right
    before a PROT_NONE page: not a byte is read or written past its size, and the missing
    fields are the defaults (a 301 is not followed, a refused connect not retried). A
    smaller config is refused; a ca_file missing, not PEM or empty fails rf_engine_create()
    with RF_ERR_INVALID_ARG and its path in cfg.errbuf."""
    garbage = os.path.join(ctx.tmpdir, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    empty = os.path.join(ctx.tmpdir, "empty.pem")
    open(empty, "w").close()
    missing = os.path.join(ctx.tmpdir, "no-such-ca.pem")
    out = run(ctx, "abi", [ctx.nginx.url("/"), ctx.nginx.url("/redirect"),
                           f"http://127.0.0.1:{ctx.refused_port()}/", missing, garbage, empty])
    assert out == "ok\n", out


def https_nginx(ctx):
    pki = ctx.pki
    return ctx.server("api-https-nginx", lambda: harness.Nginx(
        n_ports=1, tls=dict(cert=pki.server_cert, key=pki.server_key)).start())


def test_step_zero_never_waits(ctx):
    """rf_step(eng, 0) called every 100 us until each request is done: no call waits. The
    CA bundle is loaded at creation, never in a step; the first https request's step still
    does its handshake's crypto (key share, certificate check) and the first touch of that
    code, measured at 2-3.5 ms here, so the bound is 5 ms (it was 12 ms with the bundle
    loaded in a step). Plain requests and one by host name (hosts file) stay far below."""
    ng = https_nginx(ctx)
    urls = [ng.url("/"), ctx.nginx.url("/"), f"http://localhost:{ctx.nginx.ports[0]}/",
            ng.url("/?again")]
    out = run(ctx, "step0", [ctx.pki.ca_cert] + urls)
    lines = out.splitlines()
    assert lines[0:-1:2] == [f"{url} ok 200" for url in urls], out
    assert all(re.fullmatch(r"steps \d+ max_us \d+", l) for l in lines[1:-1:2]), out
    worst = fields(out, "max_step_us")[0]
    print(out)
    if slow(ctx):
        ctx.skip(f"every request ok; the longest rf_step(eng, 0) took {worst} us, not "
                 f"bounded under {build_kind(ctx)}")
    assert worst < 5000, out
    plain = [int(m) for m in re.findall(r"steps \d+ max_us (\d+)", out)][1:3]
    assert max(plain) < 2000, out


def test_cancel_drains_at_once_and_resume_reopens(ctx):
    """3,000 requests to a server that never answers, 100 in flight and the rest queued:
    after rf_cancel(), rf_step() delivers all 3,000 as cancelled, in order, well under a
    second (one ring: the very next rf_step() delivers them all). A request submitted
    while cancelled is cancelled too; after rf_resume() the same engine completes 50 new
    ones. With a pull source: it is not asked while cancelled, and after rf_resume() it
    goes on to its end. With one ring thread and with four."""
    hang, ok = ctx.bad.url("hang"), ctx.nginx.url("/")
    n = scaled(ctx, 3000, 300)
    for threads in rings(ctx, 1, 4):
        out = run(ctx, "cancel", ["drain", hang, ok, n, threads])
        m = re.search(r"^drain_us (\d+) steps (\d+) first_step (\d+)$", out, re.M)
        assert m, out
        drain_us, steps, first = map(int, m.groups())
        print(threads, out)
        assert out.endswith("ok\n"), out
        if threads == 1:
            assert (steps, first) == (1, n), out  # "the next rf_step() delivers them"
        if not slow(ctx):
            assert drain_us < 500000, out
        out = run(ctx, "cancel", ["pull", hang, ok, scaled(ctx, 500, 50), threads])
        assert out.endswith("ok\n"), out


# --------------------------------------------------------------- 8. event loops


def doc_example(name):
    """The ```c block after `<!-- example: NAME -->` in docs/api.md."""
    lines = open(API_MD).read().split("\n")
    i = lines.index(f"<!-- example: {name} -->")
    assert lines[i + 1] == "```c", f"docs/api.md:{i + 2}: no ```c block"
    end = lines.index("```", i + 2)
    return "\n".join(lines[i + 2:end]) + "\n"


def test_poll_example_serves_its_timer(ctx):
    """The poll() example of docs/api.md (the engine's descriptor and deadline beside a
    timerfd firing every 2 ms, rf_step(eng, 0) only when the engine has work) fetches
    2,000 URLs 200 at a time, and the timer is never left waiting more than 10 ms: each
    rf_step(eng, 0) returns quickly, whatever it has to do."""
    exe = compile_program(ctx, "poll_example", doc_example("poll"))
    n = scaled(ctx, 2000, 200)
    r = subprocess.run(WRAP + [exe, ctx.nginx.url("/"), str(n)], capture_output=True,
                       text=True, timeout=120 * (10 if WRAP else 1), env=program_env())
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-4000:])
    lines = r.stdout.splitlines()
    assert lines[0] == f"{n} of {n} ok", r.stdout
    m = re.fullmatch(r"timer: (\d+) ticks, longest gap ([\d.]+) ms", lines[1])
    assert m and int(m.group(1)) > 0, r.stdout
    gap = float(m.group(2))
    print(r.stdout)
    if slow(ctx):
        ctx.skip(f"all fetched; longest timer gap {gap} ms, not bounded under {build_kind(ctx)}")
    assert gap <= 10.0, r.stdout


def test_epoll_loop_with_timerfd(ctx):
    """An engine in an epoll loop beside a timerfd: the descriptor brings completions (1,000
    requests, 100 at a time, all 200), rf_engine_timeout_ms() the deadlines (five requests
    to a silent server with timeout_ms 300 end as timeouts after 0.28-1.5 s with no
    descriptor activity), rf_engine_fd() stays the same, the timer keeps firing."""
    n = scaled(ctx, 1000, 100)
    out = run(ctx, "epoll", [ctx.nginx.url("/"), ctx.bad.url("hang"), n])
    assert re.fullmatch(rf"ok {n} timeouts 5 ticks \d+ max_gap_us \d+\n", out), out
    print(out)


# ---------------------------------------------------------- 9. per-request options


def blackhole(ctx):
    return ctx.server("api-blackhole", lambda: harness.Blackhole("127.0.0.3").start())


def test_per_request_options(ctx):
    """timeout_ms, connect_timeout_ms, max_body and keep_body of one request apply to it
    alone; 0 is the engine's (timeout 2000 ms, connect timeout 3000 ms, no cap, keep 0)."""
    bh = blackhole(ctx)
    t0 = time.monotonic()
    out = run(ctx, "options", [ctx.bad.url("hang"), ctx.nginx.url("/static/64k.bin"),
                               bh.url("/")])
    elapsed = time.monotonic() - t0
    rows = [l.split() for l in out.splitlines()]
    got = [(int(r[0]), r[1], int(r[2]), int(r[4]), int(r[6]), int(r[8])) for r in rows]
    # index, error, status, total_ms, body_bytes, body_len (total_ms and a capped
    # body_bytes are checked apart)
    want = [(0, "timeout", 0, 300), (1, "timeout", 0, 2000), (2, "timeout", 0, 800),
            (3, "too_large", 200, None), (4, "ok", 200, None), (5, "ok", 200, None),
            (6, "ok", 200, None), (7, "connect_timeout", 0, 250),
            (8, "connect_timeout", 0, 600)]
    assert [g[:3] for g in got] == [w[:3] for w in want], out
    slack = 1000 if slow(ctx) else 200
    for g, w in zip(got, want):
        if w[3] is not None:
            assert w[3] <= g[3] <= w[3] + slack, (g, out)
            assert (g[4], g[5]) == (0, 0), (g, out)
    assert 1000 < got[3][4] < 65536 and got[3][5] == 0, out  # stopped past the cap
    assert [g[4:] for g in got[4:7]] == [(65536, 0), (65536, 100), (65536, 65536)], out
    # All at once: the longest is 2 s (and the start, loading the CA bundle, under TSan or
    # valgrind a few seconds more).
    assert elapsed < 2.0 + (20 if slow(ctx) else 2), elapsed


# ------------------------------------------------------------ 10. streaming callbacks


def raw_head(url, extra=""):
    """The response head nginx sends for a GET of url, as [(name, value)] in order."""
    host, path = url.split("://", 1)[1].split("/", 1)
    h, p = host.rsplit(":", 1)
    with socket.create_connection((h, int(p)), timeout=10) as s:
        s.sendall(f"GET /{path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
        buf = b""
        for _ in range(10000):
            if b"\r\n\r\n" in buf:
                break
            data = s.recv(65536)
            if not data:
                break
            buf += data
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return [tuple(l.split(": ", 1)) for l in head]


def streamed_headers(out):
    return [tuple(l.split(" ", 2)[2].split(": ", 1)) for l in out.splitlines()
            if l.startswith("H ")]


def same_headers(got, want):
    """Equal but for the Date values, which may be a second apart."""
    strip = [(n, "DATE" if n == "Date" else v) for n, v in got]
    return strip == [(n, "DATE" if n == "Date" else v) for n, v in want]


def test_on_header_sees_every_header_in_order(ctx):
    """on_header gets every response header as nginx sent it, in order: ten of 3,900 bytes
    (a 39 KB head, so some header straddles every 16 KB recv buffer), and for a followed
    redirect the 301's headers and then the 200's. The result still carries
    Content-Type and Server."""
    ng = logging_nginx(ctx)
    out = run(ctx, "stream", ["headers", 0, ng.url("/long")])
    got = streamed_headers(out)
    want = raw_head(ng.url("/long"))
    assert [n for n, _ in want][-10:] == [f"X-Long-{i}" for i in range(10)], want
    assert same_headers(got, want), (got[:6], want[:6])
    assert dict(got)["X-Long-7"] == LoggingNginx.long_value(7)
    assert out.splitlines()[-1] == "R 0 ok 200 text/plain nginx", out

    out = run(ctx, "stream", ["headers", 1, ctx.nginx.url("/redirect")])
    got = streamed_headers(out)
    want = raw_head(ctx.nginx.url("/redirect")) + raw_head(ctx.nginx.url("/"))
    assert ("Location", "/") in got[:6], got
    assert same_headers(got, want), (got, want)
    assert out.splitlines()[-1] == "R 0 ok 200 text/plain nginx", out


def fnv1a(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def test_on_body_gets_exactly_the_body(ctx):
    """The pieces on_body gets are the body, byte for byte (after de-chunking): their sum is
    body_bytes, they equal the kept body, and their hash is the file's; with one ring thread
    and with two."""
    pattern = bytes(i & 0xff for i in range(256))
    index_html = "<!doctype html>\n<title>ringfetch</title>\n<p>ringfetch chunked page</p>\n"
    cases = [(ctx.nginx.url("/static/64k.bin"), pattern * 256),
             (ctx.nginx.url("/static/1m.bin"), pattern * 4096),
             (ctx.nginx.url("/chunked"), index_html.encode()),
             (ctx.bad.url("echo", "/chunked/100000"), b"y" * 100000),
             (ctx.nginx.url("/"), harness.HELLO)]
    want = [f"B {i} 200 {len(b)} {fnv1a(b)}" for i, (_, b) in enumerate(cases)]
    for threads in rings(ctx, 1, 2):
        out = run(ctx, "stream", ["bodies", threads] + [u for u, _ in cases])
        assert out.splitlines() == want, (threads, out, want)


def test_nonzero_from_a_callback_cancels_that_request(ctx):
    """A nonzero return from on_body (on the first piece, or after 300,000 bytes) or from
    on_header (at Content-Type) ends that request as cancelled, and neither callback is
    called for it again; the other requests for the same 1 MiB file complete."""
    for threads in rings(ctx, 1, 2):
        out = run(ctx, "stream", ["abort", threads, ctx.nginx.url("/static/1m.bin")])
        rows = [l.split() for l in out.splitlines()]
        assert [(r[1], r[2]) for r in rows] == [
            ("0", "ok"), ("1", "cancelled"), ("2", "ok"), ("3", "cancelled"), ("4", "ok"),
            ("5", "cancelled")], out
        assert [int(r[3]) for r in rows[0::2]] == [1 << 20] * 3, out
        assert int(rows[3][3]) == 0 and 0 < int(rows[1][3]) < 1 << 20, out
        assert 300000 < int(rows[5][3]) < 1 << 20, out


def test_old_bench_structs(ctx):
    """rf_bench_run() with a config that ends before `stop` and a report that ends before
    `latency_method` (an older program's, each before a guard page) runs and fills the
    report up to its size: the bench structs carry their size like the others, and fields
    are only appended."""
    out = run(ctx, "abi", ["bench", ctx.nginx.url("/")])
    assert out == "ok 100\n", out
