#!/usr/bin/python3
"""ringfetch bench against wrk, h2load and gcannon: the same nginx, the same pinned CPUs, one run.

    scripts/bench-vs-peers.sh [--seconds 8] [--rounds 3] [--cases c64,tls64,rate20k,...]
                              [--before OLD/ringfetch] [--no-noslack]

nginx: one worker pinned to CPU 0, `return 200` of a 12-byte body, keep-alive without
limit, access log off. Each client runs pinned to CPU 1 with one thread, in turn, for
SECONDS, ROUNDS times; medians are printed. Client CPU is user+sys of the client process
(rusage of the reaped child), divided by the requests it completed.

Closed loop (c64, c256, c1000, 64k, p16): wrk, h2load and ringfetch as fast as they can;
c64 and c256 also run gcannon (an io_uring load generator: $GCANNON, else built once from
$GCANNON_SRC, default ../shared/peers/gcannon beside the checkout; skipped with a note when
neither is there).

The tls* cases use a second nginx, set up the same way but HTTPS (TLS 1.2 and 1.3, session
cache and tickets on) with a certificate from a test CA made at run time. ringfetch gets
--cacert and verifies it; wrk and h2load verify nothing. tlsnew makes a new connection,
and so a TLS handshake, per request; its ringfetch --no-tls-resume row is for reference,
and after its rounds a short run against an nginx with an access log shows which clients
resume sessions.

Equal rate (rate10k, rate20k, rate40k): the same work for every client, R requests/s over
64 connections for SECONDS (default 6 here): `h2load --rps R/64` (h2load's rate is per
connection), `ringfetch bench -R R`, and `ringfetch bench -R R --slack 0` as
ringfetch-noslack (no batching of due requests; --no-noslack drops it). Printed: achieved
rate and its deviation from R, CPU per request, p50/p99, the ratio of ringfetch's CPU per
request to h2load's (target <= 0.8), and a markdown row per rate.

latency: tests/servers/delayserver.c, answering exactly D = 2000 us after each request,
pinned on CPU 0. First the loopback round trip (RTT: p50 of 2,000 sequential requests to a
D = 0 server), then ringfetch at -R 1000 -c 16 (--slack 0 and the default 50) and closed
loop at -c 64, each with kernel receive timestamps and with --no-timestamps; p50 should be
within 50 us of D + RTT and p99 within 200 us. h2load at --rps for comparison (its
latencies from --log-file, measured from its actual send).

--before PATH: an older ringfetch binary runs as "ringfetch-before" in the same rounds of
every case above except latency (its `bench --json` may lack the "format" field; the keys
read here are the same); the median lines give ringfetch / ringfetch-before for each metric.
"""
import argparse
import collections
import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1
UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
GCANNON_SRC = os.environ.get("GCANNON_SRC",
                             os.path.join(os.path.dirname(ROOT), "shared", "peers", "gcannon"))
BEFORE = "ringfetch-before"


class ClientFailed(Exception):
    """A client run that exited non-zero or ran over its time limit."""


# cmd: argv, or cmd(prev_rps) -> argv; parse(stdout) -> metrics; env for the child or None;
# optional: a failure drops this client from the rest of the case instead of ending the run.
Client = collections.namedtuple("Client", "cmd parse env optional", defaults=(None, False))


def run_pinned(cmd, limit, env=None):
    """Run cmd on CLIENT_CPU (taskset execs it, so its rusage is the client's); stdout."""
    proc = subprocess.Popen(["taskset", "-c", str(CLIENT_CPU)] + cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise ClientFailed(f"{cmd[0]} ran over {limit} s:\n{out[-2000:]}\n{err[-2000:]}")
    if proc.returncode != 0:
        raise ClientFailed(f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-2000:]}\n"
                           f"{err[-2000:]}")
    return out


class Children:
    """CPU seconds of children reaped between enter and exit (one client at a time)."""

    def __enter__(self):
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.start = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc):
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = ru.ru_utime + ru.ru_stime - self.start


def server_cpu(master):
    """CPU seconds (user+sys) used so far by nginx's workers, the children of master."""
    with open(f"/proc/{master}/task/{master}/children") as f:
        pids = f.read().split()
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def parse_wrk(out):
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    reqs = int(m.group(1))
    secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    t = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"requests": reqs, "rps": reqs / secs,
            "bytes_per_s": float(t.group(1)) * UNITS[t.group(2)],
            "errors": (sum(int(x) for x in errs.groups()) if errs else 0)
            + (int(non2xx.group(1)) if non2xx else 0)}


def h2load_us(text):
    """An h2load duration ("117us", "5.36ms", "1.02s") in microseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]


def parse_h2load(out):
    """h2load's summary: the "finished in" line, the request counts and, when present, the
    "time for request" line (min, max, mean; h2load prints no percentiles)."""
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s, ([\d.]+)([KMG]?B)/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored", out)
    lat = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    return {"requests": int(done.group(2)), "rps": float(m.group(3)),
            "achieved": float(m.group(3)),
            "bytes_per_s": float(m.group(4)) * UNITS[m.group(5)],
            "errors": int(done.group(3)) + int(done.group(4)),
            "mean_us": h2load_us(lat.group(3)) if lat else None,
            "max_us": h2load_us(lat.group(2)) if lat else None}


def parse_ringfetch(out):
    """`bench --json`: format "ringfetch-bench/1", or an older build's report without the
    format field; only keys both have are required."""
    j = json.loads(out)
    lat = j.get("latency_us") or {}
    return {"requests": j["requests"], "rps": j["rps"], "bytes_per_s": j["bytes_per_s"],
            "errors": sum(j["errors"].values()), "tls_full": j.get("tls_full", 0),
            "tls_resumed": j.get("tls_resumed", 0),
            "achieved": (j.get("rate") or {}).get("achieved", j["rps"]),
            "p50": lat.get("p50"), "p99": lat.get("p99"), "mean_us": lat.get("mean"),
            "max_us": lat.get("max"), "method": j.get("latency_method", "-"), "json": j}


def parse_gcannon(out):
    """gcannon --json: responses counted as requests; 4xx, 5xx, other statuses and socket
    errors as errors."""
    j = json.loads(out)
    st = j.get("status", {})
    lat = j.get("latency_us") or {}
    return {"requests": j["responses"], "rps": j["rps"], "bytes_per_s": j["bandwidth_bps"],
            "errors": sum(j.get("errors", {}).values()) + st.get("4xx", 0) + st.get("5xx", 0)
            + st.get("other", 0),
            "p50": lat.get("p50"), "p99": lat.get("p99"), "mean_us": lat.get("avg"),
            "version": j.get("version")}


def gcannon_binary():
    """$GCANNON; else gcannon built once by GCANNON_SRC/build.sh into a directory of the
    system's temporary one, keyed by the source's hash. None, with a note printed, when
    neither is there or the build fails."""
    exe = os.environ.get("GCANNON")
    if exe:
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"$GCANNON={exe} is not an executable")
        return exe
    build = os.path.join(GCANNON_SRC, "build.sh")
    if not os.path.isfile(build):
        print(f"gcannon: skipped: $GCANNON is not set and {build} does not exist", flush=True)
        return None
    h = hashlib.sha256()
    for name in sorted(os.listdir(GCANNON_SRC)):
        path = os.path.join(GCANNON_SRC, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    d = os.path.join(tempfile.gettempdir(), f"rf-gcannon-{os.geteuid()}-{h.hexdigest()[:16]}")
    exe = os.path.join(d, "gcannon", "gcannon")
    if os.access(exe, os.X_OK):
        return exe
    tmp = f"{d}.{os.getpid()}"
    r = subprocess.run(["bash", build, tmp], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"gcannon: skipped: {build} failed:\n{r.stderr[-2000:]}", flush=True)
        return None
    try:
        os.rename(tmp, d)  # atomic: a run building at the same time keeps its own or ours
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return exe if os.access(exe, os.X_OK) else None


CLOSE = ["-H", "Connection: close"]  # wrk and h2load reconnect when the server closes


def h2load_requests(prev_rps, secs, c):
    """h2load's -n for a run of about secs at the rate the client before it reached."""
    return max(c * 16, int((prev_rps or 1000) * secs))


def clients(case, url, secs, rf, ca=None, before=None, gcannon=None):
    """{name: Client} in the order they run in a round."""
    c = case["c"]
    p = case.get("p", 1)
    new_conn = case.get("new_conn", False)
    out = {}
    if case.get("wrk", True):
        out["wrk"] = Client(["wrk", "-t1", f"-c{c}", f"-d{secs}s"] + (CLOSE if new_conn else [])
                            + [url], parse_wrk)
    if case.get("h2load", True):
        if new_conn:
            # h2load's timed mode (-D) never exits once the server closes every connection
            # (after "Stopped all clients" it hangs), so this is a run of -n requests, sized
            # from the rate of the client before it in the round.
            def cmd(prev_rps):
                return ["h2load", "--h1", "-t1", f"-c{c}",
                        f"-n{h2load_requests(prev_rps, secs, c)}"] + CLOSE + [url]
        else:
            cmd = ["h2load", "--h1", "-t1", f"-c{c}", f"-D{secs}", url]
            if p > 1:
                cmd[4:4] = [f"-m{p}"]
        out["h2load"] = Client(cmd, parse_h2load)
    if case.get("gcannon") and gcannon:
        # gcannon writes a run history to $HOME/.gcannon; gcannon[1] is a private HOME
        out["gcannon"] = Client([gcannon[0], url, "-c", str(c), "-t", "1", "-d", f"{secs}s",
                                 "--json"], parse_gcannon, dict(os.environ, HOME=gcannon[1]))

    def rf_cmd(binary):
        cmd = [binary, "bench", "-t1", f"-c{c}", f"-d{secs}s", "--json"]
        if p > 1:
            cmd += ["-p", str(p)]
        if ca:
            cmd += ["--cacert", ca]
        if new_conn:
            cmd += ["--no-keepalive"]
        return cmd

    out["ringfetch"] = Client(rf_cmd(rf) + [url], parse_ringfetch)
    if before:
        out[BEFORE] = Client(rf_cmd(before) + [url], parse_ringfetch, optional=True)
    if new_conn and ca:
        out["rf-noresume"] = Client(rf_cmd(rf) + ["--no-tls-resume", url], parse_ringfetch)
    return out


def round_order(names, r):
    """The clients' order in round r: ringfetch and ringfetch-before swap places every other
    round, so that neither always runs in the same spot as the machine's load drifts."""
    order = list(names)
    if r % 2 and "ringfetch" in order and BEFORE in order:
        i, j = order.index("ringfetch"), order.index(BEFORE)
        order[i], order[j] = order[j], order[i]
    return order


def run_rounds(cl, rounds, limit, server, show):
    """Every client of cl once per round, pinned, with its CPU (and nginx's) per request;
    {name: [metrics per round]}. show(round, name, metrics) prints a round's line."""
    res = {k: [] for k in cl}
    for r in range(rounds):
        prev_rps = None
        for who in round_order(cl, r):
            if who not in cl:
                continue
            cmd, parse, env, optional = cl[who]
            if callable(cmd):
                cmd = cmd(prev_rps)
            srv0 = server_cpu(server) if server else 0
            try:
                with Children() as ch:
                    out = run_pinned(cmd, limit, env)
            except ClientFailed as e:
                if not optional:
                    raise SystemExit(str(e))
                print(f"  {who} failed, left out of this case: {e}", flush=True)
                del cl[who]
                res.pop(who, None)
                continue
            m = parse(out)
            m["cpu_us"] = ch.cpu * 1e6 / max(m["requests"], 1)
            # The server's CPU per request, to tell a slow client from a costly one.
            srv = server_cpu(server) - srv0 if server else 0
            m["srv_us"] = srv * 1e6 / max(m["requests"], 1)
            res[who].append(m)
            prev_rps = m["rps"]
            show(r, who, m)
    return res


def medians(res, keys):
    """{name: {key: median over rounds}}, None for a key no round has."""
    out = {}
    for who, ms in res.items():
        if not ms:
            continue
        out[who] = {}
        for k in keys:
            xs = [m[k] for m in ms if m.get(k) is not None]
            out[who][k] = statistics.median(xs) if xs else None
    return out


def ratio(mine, theirs):
    # h2load counts no bytes when every response closes its connection
    return f"x{mine / theirs:.2f}" if mine is not None and theirs else "-"


def label(peer):
    return "before" if peer == BEFORE else peer


def check_goal(med, goal):
    """Prints whether ringfetch's median meets goal = (metric, "<=" or ">=", peers[, factor]):
    ringfetch's metric against factor x each peer's."""
    metric, op, peers, factor = (tuple(goal) + (1.0,))[:4]
    mine = med["ringfetch"][metric]
    for peer in peers:
        if peer not in med:
            continue
        theirs = med[peer][metric]
        met = mine <= theirs * factor if op == "<=" else mine >= theirs * factor
        want = f"{op} {factor:g} x {peer}'s" if factor != 1 else f"{op} {peer}'s"
        print(f"  target ringfetch {metric} {want}: {mine:.2f} vs {theirs:.2f}, "
              f"x{mine / theirs:.2f}: {'met' if met else 'NOT met'}", flush=True)


def run_case(name, case, base, secs, rounds, rf, ca=None, server=None, before=None,
             gcannon=None):
    url = base + case.get("path", "/")
    cl = clients(case, url, secs, rf, ca, before, gcannon)
    print(f"{name}: {url} -c {case['c']}" + (f" -p {case['p']}" if case.get("p") else "")
          + (", a new connection per request" if case.get("new_conn") else ""), flush=True)
    if case.get("gcannon") and not gcannon:
        print("  (gcannon skipped: not available)", flush=True)

    def show(r, who, m):
        tls = (f" tls {m['tls_full']} full {m['tls_resumed']} resumed"
               if m.get("tls_full") or m.get("tls_resumed") else "")
        print(f"  round {r + 1} {who:<16} {m['rps']:10.0f} req/s {m['cpu_us']:6.2f} us/req "
              f"{m['bytes_per_s'] / 1e6:8.1f} MB/s errors {m['errors']} "
              f"server {m['srv_us']:.1f} us/req{tls}", flush=True)

    res = run_rounds(cl, rounds, secs * 4 + 30, server, show)
    med = medians(res, ("rps", "cpu_us", "bytes_per_s", "srv_us", "tls_full", "tls_resumed"))
    for who, m in med.items():
        line = f"  median {who:<16} {m['rps']:10.0f} req/s {m['cpu_us']:6.2f} us/req " \
               f"{m['bytes_per_s'] / 1e6:8.1f} MB/s server {m['srv_us']:.1f} us/req"
        if m["tls_full"] or m["tls_resumed"]:
            line += f" tls {m['tls_full']:.0f} full {m['tls_resumed']:.0f} resumed"
        if who == "ringfetch":
            for peer in ("wrk", "h2load", "gcannon", BEFORE):
                if peer in med:
                    line += f" | vs {label(peer)}:" + "".join(
                        f" {lab} {ratio(m[k], med[peer][k])}"
                        for lab, k in (("rps", "rps"), ("cpu/req", "cpu_us"),
                                       ("bytes/s", "bytes_per_s")))
        print(line, flush=True)
    for goal in case.get("goals", ()):
        check_goal(med, goal)
    return med


# ------------------------------------------------------------------ equal rate

RATES = {"rate10k": 10000, "rate20k": 20000, "rate40k": 40000}
RATE_CONNS = 64
RATE_CPU_TARGET = 0.8  # ringfetch's CPU per request at most this x h2load's
RATE_TOLERANCE = 1.0   # ringfetch's achieved rate within this many % of R


def rate_clients(url, rate, secs, rf, before=None, noslack=True, c=RATE_CONNS):
    """The clients of an equal-rate case, all at rate req/s over c connections."""
    def rf_cmd(binary, extra=()):
        return [binary, "bench", "-t1", f"-c{c}", f"-R{rate}", f"-d{secs}s", "--json",
                *extra, url]

    out = {"h2load": Client(["h2load", "--h1", "-t1", f"-c{c}", f"--rps={rate / c:g}",
                             f"-D{secs}", url], parse_h2load),
           "ringfetch": Client(rf_cmd(rf), parse_ringfetch)}
    if noslack:
        out["ringfetch-noslack"] = Client(rf_cmd(rf, ("--slack", "0")), parse_ringfetch)
    if before:
        # an older build may have no --slack: it runs with its own default
        out[BEFORE] = Client(rf_cmd(before), parse_ringfetch, optional=True)
    return out


def dev(achieved, rate):
    return (achieved - rate) / rate * 100


def us(x):
    return "-" if x is None else f"{x:.0f}"


def run_rate_case(name, rate, base, secs, rounds, rf, server, before=None, noslack=True):
    """One equal-rate case; returns its markdown table row as (header, row)."""
    url = base + "/"
    cl = rate_clients(url, rate, secs, rf, before, noslack)
    print(f"{name}: {url} at {rate} req/s over {RATE_CONNS} connections (h2load "
          f"--rps {rate / RATE_CONNS:g} per connection), {secs} s x {rounds} rounds", flush=True)

    def show(r, who, m):
        lat = (f"p50 {us(m.get('p50')):>6} p99 {us(m.get('p99')):>6} us ({m.get('method')})"
               if m.get("p50") is not None else
               f"p50      - p99      - mean {us(m.get('mean_us'))} us")
        print(f"  round {r + 1} {who:<17} {m['achieved']:9.1f}/s {dev(m['achieved'], rate):+6.2f}% "
              f"{m['cpu_us']:6.2f} us/req {lat} errors {m['errors']} "
              f"server {m['srv_us']:.1f} us/req", flush=True)

    res = run_rounds(cl, rounds, secs * 4 + 30, server, show)
    med = medians(res, ("achieved", "cpu_us", "p50", "p99", "mean_us", "srv_us"))
    for who, m in med.items():
        line = (f"  median {who:<16} {m['achieved']:9.1f}/s {dev(m['achieved'], rate):+6.2f}% "
                f"{m['cpu_us']:6.2f} us/req p50 {us(m['p50'])} p99 {us(m['p99'])} us"
                + (f" mean {us(m['mean_us'])} us" if m["p50"] is None else "")
                + f" server {m['srv_us']:.1f} us/req")
        if who == "ringfetch":
            for peer in ("h2load", "ringfetch-noslack", BEFORE):
                if peer in med:
                    line += f" | vs {label(peer)}:" + "".join(
                        f" {k.replace('cpu_us', 'cpu/req')} {ratio(m[k], med[peer][k])}"
                        for k in ("cpu_us", "p50", "p99"))
        print(line, flush=True)
    rfm = med["ringfetch"]
    if "h2load" in med:
        x = rfm["cpu_us"] / med["h2load"]["cpu_us"]
        print(f"  target ringfetch CPU/req <= {RATE_CPU_TARGET} x h2load's: {rfm['cpu_us']:.2f} "
              f"vs {med['h2load']['cpu_us']:.2f} us, x{x:.2f}: "
              f"{'met' if x <= RATE_CPU_TARGET else 'NOT met'}", flush=True)
    d = dev(rfm["achieved"], rate)
    print(f"  target ringfetch achieved within {RATE_TOLERANCE:g}% of {rate}: "
          f"{rfm['achieved']:.1f}/s ({d:+.2f}%): "
          f"{'met' if abs(d) <= RATE_TOLERANCE else 'NOT met'}", flush=True)
    # the markdown row: columns for the clients that ran
    head = ["rate"]
    row = [f"{rate:,}"]
    for who in med:
        head.append(f"{who} req/s (dev.)")
        row.append(f"{med[who]['achieved']:,.0f} ({dev(med[who]['achieved'], rate):+.2f}%)")
    for who in med:
        head.append(f"{who} µs/req")
        row.append(f"{med[who]['cpu_us']:.2f}")
    if "h2load" in med:
        head.append("rf/h2load CPU/req")
        row.append(f"**{rfm['cpu_us'] / med['h2load']['cpu_us']:.2f}**")
    if BEFORE in med:
        head.append("rf/before CPU/req")
        row.append(f"{rfm['cpu_us'] / med[BEFORE]['cpu_us']:.2f}")
    for who in med:
        if med[who]["p50"] is not None:
            head.append(f"{who} p50 / p99 µs")
            row.append(f"{us(med[who]['p50'])} / {us(med[who]['p99'])}")
        elif med[who]["mean_us"] is not None:
            head.append(f"{who} mean µs")
            row.append(us(med[who]["mean_us"]))
    print("  " + md_row(row), flush=True)
    return head, row


def md_row(cells):
    return "| " + " | ".join(cells) + " |"


# ------------------------------------------------------------------ latency truth

LAT_DELAY_US = 2000
LAT_P50_US, LAT_P99_US = 50, 200  # allowed distance from D + RTT
LAT_RUNS = (  # name, ringfetch bench arguments; each also runs with --no-timestamps
    ("-R 1000 -c 16 --slack 0", ["-c16", "-R1000", "--slack", "0"]),
    ("-R 1000 -c 16", ["-c16", "-R1000"]),
    ("-c 64 closed loop", ["-c64"]),
    ("-c 64 closed loop --slack 0", ["-c64", "--slack", "0"]),
)


def h2load_log_percentiles(path):
    """p50 and p99 (nearest rank) of the microseconds column of h2load's --log-file, over the
    requests that got a status (-1 is a failed stream)."""
    lat = []
    with open(path) as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) >= 3 and cols[1] != "-1":
                lat.append(int(cols[2]))
    lat.sort()
    if not lat:
        return None, None
    pick = lambda q: lat[max(0, -(-len(lat) * q // 100) - 1)]  # noqa: E731
    return pick(50), pick(99)


def run_latency(rf, secs, rounds, tmp, delay=LAT_DELAY_US):
    """The latency case (see the module's docstring)."""
    runs = {}
    for name, args in LAT_RUNS:
        runs[name] = args
        runs[name + " --no-timestamps"] = args + ["--no-timestamps"]
    print(f"latency: delayserver answering {delay} us after each request, on CPU {SERVER_CPU}; "
          f"ringfetch -t1 on CPU {CLIENT_CPU}, {secs} s per run x {rounds} rounds", flush=True)
    res = collections.defaultdict(list)
    for r in range(rounds):
        # The round trip without load: a D = 0 server, one connection, requests in sequence.
        with harness.DelayServer(0, cpus=str(SERVER_CPU)) as ds:
            for ts in ("", " --no-timestamps"):
                m = parse_ringfetch(run_pinned([rf, "bench", "-t1", "-c1", "-n2000", "--json"]
                                               + ts.split() + [ds.url()], 60))
                res["rtt" + ts].append(m)
                print(f"  round {r + 1} RTT (D = 0, -c 1 -n 2000{ts}): p50 {m['p50']} us "
                      f"p99 {m['p99']} us ({m['method']})", flush=True)
        for name, args in runs.items():
            with harness.DelayServer(delay, cpus=str(SERVER_CPU)) as ds:
                with Children() as ch:
                    out = run_pinned([rf, "bench", "-t1", f"-d{secs}s", "--json"] + args
                                     + [ds.url()], secs * 3 + 30)
            m = parse_ringfetch(out)
            m["cpu_us"] = ch.cpu * 1e6 / max(m["requests"], 1)
            late = (ds.stats or {}).get("late_us") or {}
            m["srv_late_p50"], m["srv_late_p99"] = late.get("p50"), late.get("p99")
            res[name].append(m)
            print(f"  round {r + 1} {name:<40} {m['achieved']:8.1f}/s p50 {m['p50']} us "
                  f"p99 {m['p99']} us max {m['max_us']} us ({m['method']}) errors {m['errors']} "
                  f"{m['cpu_us']:.2f} us/req; server late p50 {m['srv_late_p50']} "
                  f"p99 {m['srv_late_p99']} us", flush=True)
        # h2load at the same rate, for its p50: it measures from its own send, not a due time
        log = os.path.join(tmp, "h2load-latency.log")
        c = 16
        with harness.DelayServer(delay, cpus=str(SERVER_CPU)) as ds:
            m = parse_h2load(run_pinned(["h2load", "--h1", "-t1", f"-c{c}", f"--rps={1000 / c:g}",
                                         f"-D{secs}", f"--log-file={log}", ds.url()],
                                        secs * 3 + 30))
        m["p50"], m["p99"] = h2load_log_percentiles(log)
        res["h2load --rps (-R 1000 -c 16)"].append(m)
        print(f"  round {r + 1} {'h2load --rps 62.5 -c 16':<40} {m['achieved']:8.1f}/s "
              f"p50 {m['p50']} us p99 {m['p99']} us (--log-file) errors {m['errors']}",
              flush=True)
    print(f"latency medians (expected: D + RTT of the same method; p50 within {LAT_P50_US} us, "
          f"p99 within {LAT_P99_US} us):", flush=True)
    med = medians(res, ("p50", "p99", "achieved", "cpu_us", "srv_late_p50", "srv_late_p99"))
    rtt = {"": med["rtt"]["p50"], " --no-timestamps": med["rtt --no-timestamps"]["p50"]}
    print(f"  RTT p50 {rtt['']:.0f} us (kernel timestamps), {rtt[' --no-timestamps']:.0f} us "
          f"(--no-timestamps)", flush=True)
    for name, m in med.items():
        if name.startswith("rtt"):
            continue
        want = delay + rtt[" --no-timestamps" if name.endswith("--no-timestamps") else ""]
        d50, d99 = m["p50"] - want, m["p99"] - want
        ok = abs(d50) <= LAT_P50_US and abs(d99) <= LAT_P99_US
        note = "" if not name.startswith("h2load") else " (reference, not checked)"
        verdict = note or (": within" if ok else ": NOT within")
        # the server's own lateness (at its write) tells a late server from a wrong client
        srv = (f"; server late p50 {m['srv_late_p50']:.0f} p99 {m['srv_late_p99']:.0f} us"
               if m["srv_late_p99"] is not None else "")
        print(f"  {name:<40} p50 {m['p50']:.0f} us ({d50:+.0f}) p99 {m['p99']:.0f} us "
              f"({d99:+.0f}) vs D + RTT = {want:.0f} us{verdict}{srv}", flush=True)


# ------------------------------------------------------------------ the rest

def versions(rf, before=None, gcannon=None):
    """One line naming the clients' versions (wrk has no --version; -v prints it)."""
    def first_line(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0].split(" [")[0]
    out = [first_line([rf, "--version"]), first_line(["wrk", "-v"]),
           first_line(["h2load", "--version"])]
    if gcannon:
        out.append(f"gcannon {gcannon}")
    if before:
        out.append(f"{BEFORE} {before}: {first_line([before, '--version'])}")
    return "; ".join(out)


def tls_nginx(pki, **conf):
    return harness.Nginx(n_ports=1, workers=1, cpus=[SERVER_CPU], keepalive_requests="unlimited",
                         worker_connections=65536,
                         tls=dict(cert=pki.server_cert, key=pki.server_key), **conf)


def run_resumption(pki, rf, c=8, secs=1):
    """Which clients resume TLS sessions on a new connection per request: a short run of each
    against an nginx that logs $ssl_session_reused, counted from its access log."""
    with tls_nginx(pki, access_log=True) as ng:
        url = ng.url("/")
        runs = {
            "wrk": (["wrk", "-t1", f"-c{c}", f"-d{secs}s"] + CLOSE + [url], parse_wrk),
            "h2load": (["h2load", "--h1", "-t1", f"-c{c}", f"-n{c * 50}"] + CLOSE + [url],
                       parse_h2load),
            "ringfetch": ([rf, "bench", "-t1", f"-c{c}", f"-d{secs}s", "--json", "--cacert",
                           pki.ca_cert, "--no-keepalive", url], parse_ringfetch),
        }
        print(f"resumption: -c {c}, a new connection per request, nginx's $ssl_session_reused",
              flush=True)
        seen = 0
        for who, (cmd, parse) in runs.items():
            m = parse(run_pinned(cmd, secs * 4 + 30))
            # nginx also logs the requests still in flight when the client stopped
            entries = ng.log_entries(count=seen + m["requests"] + c, timeout=1.0)[seen:]
            seen += len(entries)
            reused = collections.Counter(e["reused"] for e in entries)
            conns = len({e["connection"] for e in entries})
            print(f"  {who:<11} {len(entries)} requests on {conns} connections: "
                  f"{reused.get('r', 0)} resumed, {reused.get('.', 0)} full handshakes "
                  f"({', '.join(sorted({e['protocol'] for e in entries}))})", flush=True)


def enter_own_netns():
    """Called inside `unshare -n`: loopback up, and the per-namespace limits a 50,000
    connection run needs (accept backlog, ephemeral ports), without touching the host."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for key, value in (("net/core/somaxconn", "65535"),
                       ("net/ipv4/tcp_max_syn_backlog", "65535"),
                       ("net/ipv4/ip_local_port_range", "10000 65000")):
        with open(f"/proc/sys/{key}", "w") as f:
            f.write(value)


def run_scale(rf, n=50000, secs=10):
    """n keep-alive connections held for secs; nginx with 4 reuseport workers holds them.

    Runs in a network namespace of its own (see enter_own_netns). One local address has
    55,000 ephemeral ports there towards one server port; the connections are spread over
    two local addresses anyway (--source-addrs), as a bigger run would need."""
    workers = 4
    per_worker = n // workers + 1024
    with harness.Nginx(n_ports=1, workers=workers, keepalive_requests="unlimited",
                       worker_connections=per_worker, rlimit_nofile=min(per_worker + 64, 20000),
                       backlog=65535, reuseport=True) as ng:
        url = f"http://127.0.0.1:{ng.ports[0]}/"
        cmd = [rf, "bench", f"-c{n}", f"-d{secs}s", "--source-addrs", "127.0.0.2-127.0.0.3",
               "--json", url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, status, ru = os.wait4(proc.pid, 0)
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"scale run failed: {err}")
        j = json.loads(out)
        print(f"scale: -c {n} for {secs} s: {j['established']} established, peak held "
              f"{j['peak_open']}, held at the end {j['open_at_end']}, connect errors "
              f"{j['errors']['connect']}, other errors {j['errors']}, connects {j['connects']}, "
              f"{j['rps']:.0f} req/s, {j['threads']} rings; "
              f"ringfetch peak RSS {ru.ru_maxrss / 1024:.1f} MB (target < 150 MB)", flush=True)


GCANNON_GOAL = ("cpu_us", "<=", ("gcannon",), 0.8)
CASES = {
    "c64": {"c": 64, "gcannon": True, "goals": [GCANNON_GOAL]},
    "c256": {"c": 256, "gcannon": True, "goals": [GCANNON_GOAL]},
    "c1000": {"c": 1000},
    "64k": {"c": 64, "path": "/static/64k.bin", "h2load": False},
    "p16": {"c": 64, "p": 16, "wrk": False},
    # HTTPS; goals = what ringfetch's median must meet against each peer's.
    "tls64": {"c": 64, "tls": True, "goals": [("cpu_us", "<=", ("wrk", "h2load"))]},
    "tlsnew": {"c": 64, "tls": True, "new_conn": True, "resumption": True,
               "goals": [("rps", ">=", ("wrk", "h2load"))]},
    "tls64k": {"c": 64, "tls": True, "path": "/static/64k.bin",
               "goals": [("bytes_per_s", ">=", ("wrk",))]},
}
OTHER_CASES = tuple(RATES) + ("latency", "scale")
DEFAULT_CASES = ",".join(list(CASES) + list(OTHER_CASES))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=None,
                    help="per client run (default 8; 6 for the rate* and latency cases)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default=DEFAULT_CASES)
    ap.add_argument("--ringfetch", default=os.path.join(ROOT, "build", "ringfetch"))
    ap.add_argument("--before", metavar="PATH",
                    help="an older ringfetch binary, run as ringfetch-before in the same rounds")
    ap.add_argument("--no-noslack", dest="noslack", action="store_false",
                    help="rate* cases: no ringfetch --slack 0 row")
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.in_netns:
        enter_own_netns()
        run_scale(a.ringfetch)
        return 0
    if os.cpu_count() < 2:
        raise SystemExit("needs two CPUs: the server on 0, the client on 1")
    if a.before and not os.access(a.before, os.X_OK):
        raise SystemExit(f"--before {a.before}: not an executable")
    names = a.cases.split(",")
    unknown = [n for n in names if n not in CASES and n not in OTHER_CASES]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; known: {DEFAULT_CASES}")
    closed_secs, open_secs = a.seconds or 8, a.seconds or 6
    rate_rows = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="rf-bench-peers-"))
        gcannon = None
        if any(CASES.get(n, {}).get("gcannon") for n in names):
            exe = gcannon_binary()
            if exe:
                home = os.path.join(tmp, "gcannon-home")
                os.mkdir(home)
                gcannon = (exe, home)
        ng = stack.enter_context(harness.Nginx(n_ports=1, workers=1, cpus=[SERVER_CPU],
                                               keepalive_requests="unlimited",
                                               worker_connections=65536))
        base = f"http://127.0.0.1:{ng.ports[0]}"
        pki = tls_ng = None
        if any(CASES.get(n, {}).get("tls") for n in names):
            pki = harness.TestPKI(os.path.join(tmp, "pki"))
            tls_ng = stack.enter_context(tls_nginx(pki))
        print(f"nginx 1 worker on CPU {SERVER_CPU}; clients on CPU {CLIENT_CPU}, 1 thread; "
              f"{closed_secs} s (rate cases and latency {open_secs} s) x {a.rounds} rounds; "
              f"{versions(a.ringfetch, a.before, gcannon and gcannon[0])}", flush=True)
        for name in names:
            if name in RATES:
                rate_rows.append(run_rate_case(name, RATES[name], base, open_secs, a.rounds,
                                               a.ringfetch, ng.pid, a.before, a.noslack))
            elif name == "latency":
                run_latency(a.ringfetch, open_secs, a.rounds, tmp)
            elif name == "scale":
                subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                                "--in-netns", "--ringfetch", a.ringfetch], check=True)
            elif CASES[name].get("tls"):
                run_case(name, CASES[name], f"https://127.0.0.1:{tls_ng.ports[0]}", closed_secs,
                         a.rounds, a.ringfetch, pki.ca_cert, tls_ng.pid, a.before)
                if CASES[name].get("resumption"):
                    run_resumption(pki, a.ringfetch)
            else:
                run_case(name, CASES[name], base, closed_secs, a.rounds, a.ringfetch,
                         server=ng.pid, before=a.before, gcannon=gcannon)
    if rate_rows:
        # one table for docs/benchmarks.md; the header of the case with the most columns
        head = max((h for h, _ in rate_rows), key=len)
        print("equal-rate table (medians), for docs/benchmarks.md:")
        print(md_row(head))
        print(md_row(["---"] + ["---:"] * (len(head) - 1)))
        for h, row in rate_rows:
            print(md_row(row if h == head else [row[h.index(c)] if c in h else "–"
                                                for c in head]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ClientFailed as e:  # a client every row needs failed: the run ends
        sys.exit(str(e))
