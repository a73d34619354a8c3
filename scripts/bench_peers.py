#!/usr/bin/python3
"""ringfetch bench against wrk and h2load: the same nginx, the same pinned CPUs, one run.

    scripts/bench-vs-peers.sh [--seconds 8] [--rounds 3] [--cases c64,c256,c1000,64k,p16,rate]

nginx: one worker pinned to CPU 0, `return 200` of a 12-byte body, keep-alive without
limit, access log off. Each client runs pinned to CPU 1 with one thread, in turn, for
SECONDS, ROUNDS times; medians are printed. Client CPU is user+sys of the client process
(os.wait4), divided by the requests it completed.
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys

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
            "errors": sum(j["errors"].values()), "json": j}


def clients(case, url, secs, rf):
    c = case["c"]
    p = case.get("p", 1)
    out = {}
    if case.get("wrk", True):
        out["wrk"] = (["wrk", "-t1", f"-c{c}", f"-d{secs}s", url], parse_wrk)
    if case.get("h2load", True):
        cmd = ["h2load", "--h1", "-t1", f"-c{c}", f"-D{secs}", url]
        if p > 1:
            cmd[4:4] = [f"-m{p}"]
        out["h2load"] = (cmd, parse_h2load)
    cmd = [rf, "bench", "-t1", f"-c{c}", f"-d{secs}s", "--json", url]
    if p > 1:
        cmd += ["-p", str(p)]
    out["ringfetch"] = (cmd, parse_ringfetch)
    return out


def run_case(name, case, base, secs, rounds, rf):
    url = base + case.get("path", "/")
    cl = clients(case, url, secs, rf)
    res = {k: [] for k in cl}
    print(f"{name}: {url} -c {case['c']}" + (f" -p {case['p']}" if case.get("p") else ""),
          flush=True)
    for r in range(rounds):
        for who, (cmd, parse) in cl.items():
            with Children() as ch:
                out = run_pinned(cmd, secs * 3 + 30)
            m = parse(out)
            m["cpu_us"] = ch.cpu * 1e6 / max(m["requests"], 1)
            res[who].append(m)
            print(f"  round {r + 1} {who:<9} {m['rps']:10.0f} req/s {m['cpu_us']:6.2f} us/req "
                  f"{m['bytes_per_s'] / 1e6:8.1f} MB/s errors {m['errors']}", flush=True)
    med = {who: {k: statistics.median(x[k] for x in ms) for k in ("rps", "cpu_us", "bytes_per_s")}
           for who, ms in res.items()}
    for who, m in med.items():
        line = f"  median {who:<9} {m['rps']:10.0f} req/s {m['cpu_us']:6.2f} us/req " \
               f"{m['bytes_per_s'] / 1e6:8.1f} MB/s"
        for peer in ("wrk", "h2load"):
            if peer in med and who == "ringfetch":
                line += (f" | vs {peer}: rps x{m['rps'] / med[peer]['rps']:.2f}"
                         f" cpu/req x{m['cpu_us'] / med[peer]['cpu_us']:.2f}"
                         f" bytes/s x{m['bytes_per_s'] / med[peer]['bytes_per_s']:.2f}")
        print(line, flush=True)
    return med


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
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default="c64,c256,c1000,64k,p16,rate,scale")
    ap.add_argument("--ringfetch", default=os.path.join(ROOT, "build", "ringfetch"))
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.in_netns:
        enter_own_netns()
        run_scale(a.ringfetch)
        return 0
    if os.cpu_count() < 2:
        raise SystemExit("needs two CPUs: the server on 0, the client on 1")
    with harness.Nginx(n_ports=1, workers=1, cpus=[SERVER_CPU],
                       keepalive_requests="unlimited", worker_connections=65536) as ng:
        base = f"http://127.0.0.1:{ng.ports[0]}"
        print(f"nginx 1 worker on CPU {SERVER_CPU}; clients on CPU {CLIENT_CPU}, 1 thread; "
              f"{a.seconds} s x {a.rounds} rounds", flush=True)
        for name in a.cases.split(","):
            if name == "rate":
                run_rate(base, a.ringfetch, 20000, 10)
            elif name == "scale":
                subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                                "--in-netns", "--ringfetch", a.ringfetch], check=True)
            else:
                run_case(name, CASES[name], base, a.seconds, a.rounds, a.ringfetch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
