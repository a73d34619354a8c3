#!/usr/bin/python3
"""ringfetch bench against wrk and h2load: the same nginx, the same pinned CPUs, one run.

    scripts/bench-vs-peers.sh [--seconds 8] [--rounds 3] [--cases c64,tls64,tlsnew,...]

nginx: one worker pinned to CPU 0, `return 200` of a 12-byte body, keep-alive without
limit, access log off. Each client runs pinned to CPU 1 with one thread, in turn, for
SECONDS, ROUNDS times; medians are printed. Client CPU is user+sys of the client process
(os.wait4), divided by the requests it completed.

The tls* cases use a second nginx, set up the same way but HTTPS (TLS 1.2 and 1.3, session
cache and tickets on) with a certificate from a test CA made at run time. ringfetch gets
--cacert and verifies it; wrk and h2load verify nothing. tlsnew makes a new connection,
and so a TLS handshake, per request; its ringfetch --no-tls-resume row is for reference,
and after its rounds a short run against an nginx with an access log shows which clients
resume sessions.
"""
import argparse
import collections
import contextlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1
UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def run_pinned(cmd, limit):
    """Run cmd on CLIENT_CPU (taskset execs it, so its rusage is the client's); stdout."""
    proc = subprocess.Popen(["taskset", "-c", str(CLIENT_CPU)] + cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise SystemExit(f"{cmd[0]} ran over {limit} s:\n{out}\n{err}")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{out}\n{err}")
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


def parse_h2load(out):
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s, ([\d.]+)([KMG]?B)/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored", out)
    return {"requests": int(done.group(2)), "rps": float(m.group(3)),
            "bytes_per_s": float(m.group(4)) * UNITS[m.group(5)],
            "errors": int(done.group(3)) + int(done.group(4))}


def parse_ringfetch(out):
    j = json.loads(out)
    return {"requests": j["requests"], "rps": j["rps"], "bytes_per_s": j["bytes_per_s"],
            "errors": sum(j["errors"].values()), "tls_full": j.get("tls_full", 0),
            "tls_resumed": j.get("tls_resumed", 0), "json": j}


CLOSE = ["-H", "Connection: close"]  # wrk and h2load reconnect when the server closes


def h2load_requests(prev_rps, secs, c):
    """h2load's -n for a run of about secs at the rate the client before it reached."""
    return max(c * 16, int((prev_rps or 1000) * secs))


def clients(case, url, secs, rf, ca=None):
    """{name: (cmd or cmd(prev_rps), parse)} in the order they run in a round."""
    c = case["c"]
    p = case.get("p", 1)
    new_conn = case.get("new_conn", False)
    out = {}
    if case.get("wrk", True):
        out["wrk"] = (["wrk", "-t1", f"-c{c}", f"-d{secs}s"] + (CLOSE if new_conn else [])
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
        out["h2load"] = (cmd, parse_h2load)
    cmd = [rf, "bench", "-t1", f"-c{c}", f"-d{secs}s", "--json"]
    if p > 1:
        cmd += ["-p", str(p)]
    if ca:
        cmd += ["--cacert", ca]
    if new_conn:
        cmd += ["--no-keepalive"]
    out["ringfetch"] = (cmd + [url], parse_ringfetch)
    if new_conn and ca:
        out["rf-noresume"] = (cmd + ["--no-tls-resume", url], parse_ringfetch)
    return out


def ratio(mine, theirs):
    # h2load counts no bytes when every response closes its connection
    return f"x{mine / theirs:.2f}" if theirs else "-"


def check_goal(med, goal):
    """Prints whether ringfetch's median meets goal = (metric, "<=" or ">=", peers)."""
    metric, op, peers = goal
    mine = med["ringfetch"][metric]
    for peer in peers:
        if peer not in med:
            continue
        theirs = med[peer][metric]
        met = mine <= theirs if op == "<=" else mine >= theirs
        print(f"  target ringfetch {metric} {op} {peer}'s: {mine:.2f} vs {theirs:.2f}, "
              f"x{mine / theirs:.2f}: {'met' if met else 'NOT met'}", flush=True)


def run_case(name, case, base, secs, rounds, rf, ca=None, server=None):
    url = base + case.get("path", "/")
    cl = clients(case, url, secs, rf, ca)
    res = {k: [] for k in cl}
    print(f"{name}: {url} -c {case['c']}" + (f" -p {case['p']}" if case.get("p") else "")
          + (", a new connection per request" if case.get("new_conn") else ""), flush=True)
    for r in range(rounds):
        prev_rps = None
        for who, (cmd, parse) in cl.items():
            if callable(cmd):
                cmd = cmd(prev_rps)
            srv0 = server_cpu(server) if server else 0
            with Children() as ch:
                out = run_pinned(cmd, secs * 4 + 30)
            m = parse(out)
            m["cpu_us"] = ch.cpu * 1e6 / max(m["requests"], 1)
            # The server's CPU per request, to tell a slow client from a costly one.
            srv = server_cpu(server) - srv0 if server else 0
            m["srv_us"] = srv * 1e6 / max(m["requests"], 1)
            res[who].append(m)
            prev_rps = m["rps"]
            tls = (f" tls {m['tls_full']} full {m['tls_resumed']} resumed"
                   if m.get("tls_full") or m.get("tls_resumed") else "")
            print(f"  round {r + 1} {who:<11} {m['rps']:10.0f} req/s {m['cpu_us']:6.2f} us/req "
                  f"{m['bytes_per_s'] / 1e6:8.1f} MB/s errors {m['errors']} "
                  f"server {m['srv_us']:.1f} us/req{tls}", flush=True)
    keys = ("rps", "cpu_us", "bytes_per_s", "srv_us", "tls_full", "tls_resumed")
    med = {who: {k: statistics.median(x.get(k, 0) for x in ms) for k in keys}
           for who, ms in res.items()}
    for who, m in med.items():
        line = f"  median {who:<11} {m['rps']:10.0f} req/s {m['cpu_us']:6.2f} us/req " \
               f"{m['bytes_per_s'] / 1e6:8.1f} MB/s server {m['srv_us']:.1f} us/req"
        if m["tls_full"] or m["tls_resumed"]:
            line += f" tls {m['tls_full']:.0f} full {m['tls_resumed']:.0f} resumed"
        for peer in ("wrk", "h2load"):
            if peer in med and who == "ringfetch":
                line += f" | vs {peer}:" + "".join(
                    f" {label} {ratio(m[k], med[peer][k])}"
                    for label, k in (("rps", "rps"), ("cpu/req", "cpu_us"),
                                     ("bytes/s", "bytes_per_s")))
        print(line, flush=True)
    if case.get("goal"):
        check_goal(med, case["goal"])
    return med


def versions(rf):
    """One line naming the three clients' versions (wrk has no --version; -v prints it)."""
    def first_line(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip().splitlines()[0].split(" [")[0]
    return "; ".join((first_line([rf, "--version"]), first_line(["wrk", "-v"]),
                      first_line(["h2load", "--version"])))


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


def run_rate(base, rf, rate, secs):
    url = base + "/"
    with Children() as ch:
        out = run_pinned([rf, "bench", "-t1", "-c64", f"-d{secs}s", f"-R{rate}", "--json", url],
                         secs * 3 + 30)
    j = json.loads(out)
    ach = j["rate"]["achieved"]
    print(f"rate: -R {rate} for {secs} s: achieved {ach:.1f}/s "
          f"({(ach - rate) / rate * 100:+.2f}%), p50 {j['latency_us']['p50']} us, "
          f"p99 {j['latency_us']['p99']} us, max {j['latency_us']['max']} us, "
          f"client {ch.cpu * 1e6 / max(j['requests'], 1):.2f} us/req", flush=True)


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


CASES = {
    "c64": {"c": 64},
    "c256": {"c": 256},
    "c1000": {"c": 1000},
    "64k": {"c": 64, "path": "/static/64k.bin", "h2load": False},
    "p16": {"c": 64, "p": 16, "wrk": False},
    # HTTPS; goal = what ringfetch's median must meet against each peer's.
    "tls64": {"c": 64, "tls": True, "goal": ("cpu_us", "<=", ("wrk", "h2load"))},
    "tlsnew": {"c": 64, "tls": True, "new_conn": True, "resumption": True,
               "goal": ("rps", ">=", ("wrk", "h2load"))},
    "tls64k": {"c": 64, "tls": True, "path": "/static/64k.bin",
               "goal": ("bytes_per_s", ">=", ("wrk",))},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default="c64,c256,c1000,64k,p16,tls64,tlsnew,tls64k,rate,scale")
    ap.add_argument("--ringfetch", default=os.path.join(ROOT, "build", "ringfetch"))
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.in_netns:
        enter_own_netns()
        run_scale(a.ringfetch)
        return 0
    if os.cpu_count() < 2:
        raise SystemExit("needs two CPUs: the server on 0, the client on 1")
    names = a.cases.split(",")
    unknown = [n for n in names if n not in CASES and n not in ("rate", "scale")]
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; known: {', '.join(CASES)}, rate, scale")
    with contextlib.ExitStack() as stack:
        ng = stack.enter_context(harness.Nginx(n_ports=1, workers=1, cpus=[SERVER_CPU],
                                               keepalive_requests="unlimited",
                                               worker_connections=65536))
        base = f"http://127.0.0.1:{ng.ports[0]}"
        pki = tls_ng = None
        if any(CASES.get(n, {}).get("tls") for n in names):
            pki = harness.TestPKI(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="rf-bench-pki-")))
            tls_ng = stack.enter_context(tls_nginx(pki))
        print(f"nginx 1 worker on CPU {SERVER_CPU}; clients on CPU {CLIENT_CPU}, 1 thread; "
              f"{a.seconds} s x {a.rounds} rounds; {versions(a.ringfetch)}", flush=True)
        for name in names:
            if name == "rate":
                run_rate(base, a.ringfetch, 20000, 10)
            elif name == "scale":
                subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                                "--in-netns", "--ringfetch", a.ringfetch], check=True)
            elif CASES[name].get("tls"):
                run_case(name, CASES[name], f"https://127.0.0.1:{tls_ng.ports[0]}", a.seconds,
                         a.rounds, a.ringfetch, pki.ca_cert, tls_ng.pid)
                if CASES[name].get("resumption"):
                    run_resumption(pki, a.ringfetch)
            else:
                run_case(name, CASES[name], base, a.seconds, a.rounds, a.ringfetch,
                         server=ng.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
