#!/usr/bin/python3
"""The measurements behind docs/scale-out.md's "on paper" section: memory per held
connection and CPU per request, on this machine.

    scripts/scaleout-numbers.py [--ringfetch build/ringfetch] [--cases memory,bench,fetch]

memory: `ringfetch bench -c N` for N = 1,000, 10,000 and 20,000 keep-alive connections
        held 4 s, in a network namespace of its own (unshare -n: a private loopback whose
        port range and backlog can be raised), nginx with 2 reuseport workers. Peak RSS from
        wait4(); kernel memory from the rise of /proc/meminfo's Slab and the namespace's
        TCP buffer pages (/proc/net/sockstat) while the connections are held (both ends).
bench:  a closed-loop `ringfetch bench -t 1 -c 64 -d 5s` on CPU 1, nginx on CPU 0:
        client user+sys / requests.
fetch:  `ringfetch fetch -t 1 -c 500` of 100,000 URLs on CPU 1, nginx on CPU 0: keep-alive
        http, a new connection per URL (--no-keepalive), and https with a full TLS
        handshake per URL (the server resumes no session): client user+sys / rows.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

SERVER_CPU, CLIENT_CPU = "0", "1"


def wait_rusage(proc):
    """(exit status, stdout, user+sys seconds, peak RSS in KiB) of a Popen child."""
    out = proc.stdout.read()
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def meminfo_kib(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def sockstat_tcp_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1])
    return 0


def memory_in_netns(rf):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for key, value in (("net/core/somaxconn", "65535"),
                       ("net/ipv4/tcp_max_syn_backlog", "65535"),
                       ("net/ipv4/ip_local_port_range", "10000 65000")):
        with open(f"/proc/sys/{key}", "w") as f:
            f.write(value)
    results = []
    for n, mode in ((1000, "idle"), (10000, "idle"), (20000, "idle"),
                    (1000, "busy"), (10000, "busy"), (20000, "busy")):
        per_worker = n // 2 + 1024
        with harness.Nginx(n_ports=1, workers=2, keepalive_requests="unlimited",
                           worker_connections=per_worker, rlimit_nofile=per_worker + 64,
                           backlog=65535, reuseport=True) as ng:
            time.sleep(0.5)
            slab0, pages0 = meminfo_kib("Slab"), sockstat_tcp_pages()
            peak = {"slab": 0, "pages": 0, "rss": 0}
            stop = threading.Event()
            # idle: -R 1 (one request a second in all), the connections held and nearly idle,
            # as most of a million would be; busy: the closed loop, every connection asking
            # again as soon as it has its answer, so every receive buffer is in use.
            rate = ["-R", "1"] if mode == "idle" else []
            proc = subprocess.Popen([rf, "bench", f"-c{n}", "-d4s"] + rate + ["-q", "--json",
                                     "--source-addrs", "127.0.0.2-127.0.0.3",
                                     f"http://127.0.0.1:{ng.ports[0]}/"],
                                    stdout=subprocess.PIPE, text=True)

            def sample():
                # The resident size while the run goes on (VmRSS), besides wait4's peak: a
                # start-up allocation freed before the connections open would hide in the peak.
                while not stop.wait(0.1):
                    peak["slab"] = max(peak["slab"], meminfo_kib("Slab") - slab0)
                    peak["pages"] = max(peak["pages"], sockstat_tcp_pages() - pages0)
                    try:
                        with open(f"/proc/{proc.pid}/status") as f:
                            for line in f:
                                if line.startswith("VmRSS:"):
                                    peak["rss"] = max(peak["rss"], int(line.split()[1]))
                    except OSError:
                        pass
            t = threading.Thread(target=sample)
            t.start()
            rc, out, cpu, rss = wait_rusage(proc)
            stop.set()
            t.join()
            if rc != 0:
                raise SystemExit(f"bench -c {n} failed")
            j = json.loads(out)
            results.append({"connections": n, "mode": mode, "requests": j["requests"],
                            "established": j["established"],
                            "peak_open": j["peak_open"], "threads": j["threads"],
                            "rss_kib": rss, "vmrss_kib": peak["rss"], "cpu_s": cpu, "slab_kib": peak["slab"],
                            "tcp_buffer_kib": peak["pages"] * 4})
    print(json.dumps(results))


def case_memory(rf):
    r = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                        "--in-netns", "--ringfetch", rf], capture_output=True, text=True,
                       check=True)
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    for row in rows:
        print(f"memory: {row['mode']} -c {row['connections']}: {row['requests']} requests, "
              f"{row['established']} established, peak held "
              f"{row['peak_open']}, {row['threads']} rings, ringfetch peak RSS "
              f"{row['rss_kib'] / 1024:.1f} MiB, largest VmRSS while running "
              f"{row['vmrss_kib'] / 1024:.1f} MiB, CPU {row['cpu_s']:.2f} s "
              f"({row['cpu_s'] * 1e6 / row['connections']:.1f} us per connection); kernel: Slab +{row['slab_kib'] / 1024:.1f} MiB, TCP "
              f"buffers +{row['tcp_buffer_kib'] / 1024:.1f} MiB (client and server sockets)")
    for mode in ("idle", "busy"):
        a, b = [r for r in rows if r["mode"] == mode][::2]
        dn = b["connections"] - a["connections"]
        print(f"memory: {mode}, marginal from -c {a['connections']} to -c {b['connections']}: "
              f"RSS {(b['rss_kib'] - a['rss_kib']) / dn:.2f} KiB per connection (VmRSS "
              f"{(b['vmrss_kib'] - a['vmrss_kib']) / dn:.2f}), kernel slab "
              f"{(b['slab_kib'] - a['slab_kib']) / dn:.2f} KiB per connection pair")


def pinned(cmd):
    return ["taskset", "-c", CLIENT_CPU] + cmd


def case_bench(rf):
    with harness.Nginx(n_ports=1, workers=1, cpus=[int(SERVER_CPU)],
                       keepalive_requests="unlimited") as ng:
        url = f"http://127.0.0.1:{ng.ports[0]}/"
        for c in (64, 1000):
            proc = subprocess.Popen(pinned([rf, "bench", "-t1", f"-c{c}", "-d5s", "-q", "--json",
                                            url]), stdout=subprocess.PIPE, text=True)
            rc, out, cpu, rss = wait_rusage(proc)
            j = json.loads(out)
            print(f"bench: closed loop -c {c} 5 s: {j['requests']} requests, {j['rps']:.0f}/s, "
                  f"client CPU {cpu:.2f} s = {cpu * 1e6 / j['requests']:.2f} us per request, "
                  f"peak RSS {rss / 1024:.1f} MiB")


def case_fetch(rf):
    n = 100000
    with tempfile.TemporaryDirectory(prefix="rf-scaleout-") as d:
        pki = harness.TestPKI(os.path.join(d, "pki"))
        tls = dict(cert=pki.server_cert, key=pki.server_key, session_tickets=False,
                   session_cache=False)
        with harness.Nginx(n_ports=4, workers=1, cpus=[int(SERVER_CPU)],
                           keepalive_requests="unlimited") as ng, \
             harness.Nginx(n_ports=4, workers=1, cpus=[int(SERVER_CPU)], tls=tls) as tng:
            for name, server, extra, count in (
                    ("http keep-alive", ng, [], n),
                    ("http, new connection per URL", ng, ["--no-keepalive"], n),
                    ("https, full TLS handshake per URL", tng,
                     ["--no-keepalive", "--cacert", pki.ca_cert], n // 5)):
                urls = os.path.join(d, "urls.txt")
                with open(urls, "w") as f:
                    for i in range(count):
                        f.write(server.url(f"/?i={i}", i % 4) + "\n")
                out = os.path.join(d, "rows.jsonl")
                t0 = time.monotonic()
                proc = subprocess.Popen(pinned([rf, "fetch", "-q", "-t1", "-c500", "-i", urls,
                                                "-o", out] + extra), stdout=subprocess.PIPE,
                                        text=True)
                rc, _, cpu, rss = wait_rusage(proc)
                wall = time.monotonic() - t0
                with open(out) as f:
                    rows = [json.loads(line) for line in f]
                ok = sum(1 for r in rows if r["status"] == 200)
                if rc != 0 or ok != count:
                    raise SystemExit(f"fetch {name}: status {rc}, {ok} of {count} rows 200")
                print(f"fetch: {name}: {count} URLs in {wall:.2f} s ({count / wall:.0f}/s), "
                      f"client CPU {cpu:.2f} s = {cpu * 1e6 / count:.1f} us per URL, "
                      f"peak RSS {rss / 1024:.1f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ringfetch", default=os.path.join(ROOT, "build", "ringfetch"))
    ap.add_argument("--cases", default="memory,bench,fetch")
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    rf = os.path.abspath(a.ringfetch)
    if a.in_netns:
        memory_in_netns(rf)
        return 0
    print(f"{subprocess.run([rf, '--version'], capture_output=True, text=True).stdout.strip()}; "
          f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')}", flush=True)
    for case in a.cases.split(","):
        {"memory": case_memory, "bench": case_bench, "fetch": case_fetch}[case](rf)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
