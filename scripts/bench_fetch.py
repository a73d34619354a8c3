#!/usr/bin/python3
"""ringfetch fetch against curl --parallel and aiohttp on one URL list, one nginx, one run.

    scripts/bench-fetch.sh [--urls 100000] [--ports 100] [--rounds 3] [--parts 1,2,3]
    scripts/bench-fetch.sh --parts 4 [--https-urls 10000] [--https-ports 50]
    scripts/bench-fetch.sh --before OLD/ringfetch [--parts ...]

Part 1: URLS URLs over PORTS loopback nginx ports, 1% pointing at refused ports; ringfetch
        (-c 500), `curl --parallel --parallel-max 500` and the aiohttp pattern
        (scripts/aiohttp_fetch.py) in turn, ROUNDS rounds; medians of wall time, CPU
        seconds (user+sys) and peak RSS, and ringfetch's ratios to each.
Part 2: the same list with 2% of the URLs on a server that accepts and never answers;
        ringfetch --timeout 2 against the bound hangs/500 x 2 s + part 1's wall time.
Part 3: a 1,000,000-line list with -c 1000: ringfetch's peak RSS.
Part 4: HTTPS: HTTPS_URLS https URLs over HTTPS_PORTS ports of a second nginx with a
        certificate from a test CA made at run time; ringfetch (-c 500) and
        `curl --parallel --parallel-max 500`, both given --cacert, in turn, ROUNDS rounds;
        medians of wall time and CPU, and the ratios. Not in the default parts.
--before PATH: an older ringfetch binary runs as "ringfetch-before" beside ringfetch in every
        part (in the same rounds, the two swapping places every other round), and each
        part ends with ringfetch / ringfetch-before for wall time, CPU and peak RSS.
--policy: part 1 also runs `ringfetch fetch -L --retries 2` on the same list (no redirects
        in it; the refused 1% are retried twice, with the default back-off) and prints its
        wall time over plain ringfetch's.
Every ringfetch run is checked: one row per line, indexes in order, the expected errors.
Every curl run: one status per URL (-w), and in part 4 every one 200.
Measurement: os.wait4() of each client process (wall clock around it) for CPU; peak RSS
from GNU time's %M (see measure()).
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402
from bench_peers import BEFORE, round_order  # noqa: E402

PYTHON = "/usr/bin/python3"  # Debian's python3-aiohttp lives here
POLICY = "rf -L --retries 2"  # part 1 with --policy
RUN_LIMIT_S = 600            # no client run may take longer than this
GNU_TIME = "/usr/bin/time"   # Debian's package "time"


class Measure:
    def __init__(self, wall, cpu, rss_mb, rc):
        self.wall, self.cpu, self.rss_mb, self.rc = wall, cpu, rss_mb, rc


def measure(cmd, stdout_path):
    """Run cmd with stdout to a file; wall time, user+sys seconds and peak RSS of the child.

    The peak RSS comes from GNU time (-f %M), which forks the client itself: the ru_maxrss
    that wait4() gives for a child of this process starts at this Python process's own RSS
    (Linux carries the high-water mark across exec, ~20-25 MB here), which hid every client
    below that. Without /usr/bin/time it falls back to wait4() and says so once."""
    rss_path = stdout_path + ".rss"
    wrap = [GNU_TIME, "-f", "%M", "-o", rss_path] if os.access(GNU_TIME, os.X_OK) else []
    if not wrap and not getattr(measure, "warned", False):
        measure.warned = True
        print(f"note: no {GNU_TIME}: peak RSS from wait4(), at least this Python's own RSS",
              flush=True)
    with open(stdout_path, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(wrap + cmd, stdout=out, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = t0 + RUN_LIMIT_S
        for _ in range(RUN_LIMIT_S * 100):
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)  # time and the client it runs
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.monotonic() - t0
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
    rss_mb = ru.ru_maxrss / 1024.0
    if wrap:
        # "Command exited with non-zero status N" may come first; %M is the last line
        try:
            with open(rss_path) as f:
                lines = f.read().split()
            os.unlink(rss_path)
        except FileNotFoundError:  # killed at the time limit before time wrote it
            lines = []
        if lines and lines[-1].isdigit():
            rss_mb = int(lines[-1]) / 1024.0
    return Measure(wall, ru.ru_utime + ru.ru_stime, rss_mb, proc.returncode), err


def write_list(path, n, ports, refused, hang_port=None):
    """One URL per line: every 100th line (offset 50) refused, every 50th (offset 25) hangs."""
    with open(path, "w") as f:
        for i in range(n):
            if i % 100 == 50:
                port = refused[(i // 100) % len(refused)]
            elif hang_port and i % 50 == 25:
                port = hang_port
            else:
                port = ports[i % len(ports)]
            f.write(f"http://127.0.0.1:{port}/?i={i}\n")


def check_rows(path, n, expect_errors, tls=None):
    """Every line one row, indexes 0..n-1 in order; error counts as expected. With a dict
    as tls, counts the rows' TLS handshakes into it: "full", "resumed" and "reused" (a
    request on a connection that was already open, so no handshake)."""
    errors = {}
    count = 0
    with open(path) as f:
        for count, line in enumerate(f, 1):
            row = json.loads(line)
            if row["index"] != count - 1:
                raise SystemExit(f"row {count - 1} out of order: {line.strip()}")
            if row["error"]:
                errors[row["error"]] = errors.get(row["error"], 0) + 1
            if tls is not None and not row["error"]:
                if row.get("tls_version") is None:
                    raise SystemExit(f"row {count - 1} has no TLS: {line.strip()}")
                kind = ("resumed" if row.get("tls_resumed") else "reused"
                        if row.get("connect_ms") == 0 and row.get("tls_ms") == 0 else "full")
                tls[kind] = tls.get(kind, 0) + 1
    if count != n:
        raise SystemExit(f"{count} rows for {n} lines")
    if errors != expect_errors:
        raise SystemExit(f"errors {errors}, expected {expect_errors}")
    return count


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def median(ms, attr):
    return statistics.median(getattr(m, attr) for m in ms)


def show_round(r, name, m, note=""):
    print(f"  round {r + 1} {name:<16} {m.wall:6.2f} s wall {m.cpu:6.2f} s cpu "
          f"{m.rss_mb:6.1f} MB{'   ' + note if note else ''}", flush=True)


def show(name, ms):
    print(f"  {name:<16} wall {median(ms, 'wall'):7.2f} s   cpu {median(ms, 'cpu'):7.2f} s   "
          f"rss {median(ms, 'rss_mb'):7.1f} MB   (medians of {len(ms)}: wall "
          + ", ".join(f"{m.wall:.2f}" for m in ms) + ")", flush=True)


def with_before(a, clients):
    """clients with ringfetch-before right after ringfetch: the same command, a.before's binary."""
    if not a.before:
        return clients
    out = {}
    for name, cmd in clients.items():
        out[name] = cmd
        if name == "ringfetch":
            out[BEFORE] = [a.before] + cmd[1:]
    return out


def show_before(res):
    """ringfetch's medians over ringfetch-before's, when both ran."""
    if BEFORE in res:
        rf, b = res["ringfetch"], res[BEFORE]
        print("  ringfetch/ringfetch-before " + "   ".join(
            f"{label} {median(rf, k) / median(b, k):.3f}"
            for label, k in (("wall", "wall"), ("cpu", "cpu"), ("rss", "rss_mb"))
            if median(b, k)), flush=True)


def part1(a, tmp, ports, refused):
    n = a.urls
    urls = os.path.join(tmp, "urls.txt")
    write_list(urls, n, ports, refused)
    curl_cfg = os.path.join(tmp, "urls.curl")
    with open(urls) as src, open(curl_cfg, "w") as dst:
        for line in src:
            dst.write(f'url = "{line.strip()}"\noutput = "/dev/null"\n')
    out = os.path.join(tmp, "out")
    n_refused = sum(1 for i in range(n) if i % 100 == 50)
    clients = {
        "ringfetch": [a.ringfetch, "fetch", "-c", "500", "-t", str(a.threads), "-i", urls],
        "curl": ["curl", "--parallel", "--parallel-max", "500", "-s", "-K", curl_cfg,
                 "-w", "%{http_code}\\n"],
        "aiohttp": [PYTHON, os.path.join(ROOT, "scripts", "aiohttp_fetch.py"), urls, "500"],
    }
    if a.no_aiohttp:
        del clients["aiohttp"]
    if a.policy:
        clients[POLICY] = clients["ringfetch"][:2] + ["-L", "--retries", "2"] + \
            clients["ringfetch"][2:]
    clients = with_before(a, clients)
    res = {k: [] for k in clients}
    print(f"part 1: {n} URLs over {len(ports)} nginx ports, {n_refused} refused, c=500",
          flush=True)
    for r in range(a.rounds):
        for name in round_order(clients, r):
            cmd = clients[name]
            m, err = measure(cmd, out)
            if name in ("ringfetch", BEFORE, POLICY):
                check_rows(out, n, {"refused": n_refused})
            elif count_lines(out) != n:
                raise SystemExit(f"{name}: {count_lines(out)} results for {n} URLs\n{err}")
            res[name].append(m)
            show_round(r, name, m)
    print("part 1 medians:")
    for name, ms in res.items():
        show(name, ms)
    rf = res["ringfetch"]
    c = res["curl"]
    print(f"  ringfetch/curl wall {median(rf, 'wall') / median(c, 'wall'):.3f} (target <= 0.5)"
          f"   rss {median(rf, 'rss_mb') / median(c, 'rss_mb'):.3f} (target <= 1)"
          f"   cpu {median(rf, 'cpu') / median(c, 'cpu'):.3f}")
    if "aiohttp" in res:
        ai = res["aiohttp"]
        print(f"  ringfetch/aiohttp cpu {median(rf, 'cpu') / median(ai, 'cpu'):.3f} "
              f"(target <= 0.1)   wall {median(rf, 'wall') / median(ai, 'wall'):.3f}"
              f"   rss {median(rf, 'rss_mb') / median(ai, 'rss_mb'):.3f}", flush=True)
    show_before(res)
    if POLICY in res:
        pol = res[POLICY]
        print(f"  {POLICY} / ringfetch wall {median(pol, 'wall') / median(rf, 'wall'):.3f} "
              f"(target <= 1.1)   cpu {median(pol, 'cpu') / median(rf, 'cpu'):.3f}", flush=True)
    return median(rf, "wall")


def part2(a, tmp, ports, refused, rest_wall):
    n, c, timeout = a.urls, 500, 2.0
    with harness.BadServer() as bad:
        urls = os.path.join(tmp, "urls-hang.txt")
        write_list(urls, n, ports, refused, hang_port=bad.port("hang"))
        n_refused = sum(1 for i in range(n) if i % 100 == 50)
        n_hang = sum(1 for i in range(n) if i % 100 != 50 and i % 50 == 25)
        bound = n_hang / c * timeout + rest_wall * (n - n_hang) / n
        print(f"part 2: {n} URLs, {n_hang} on a server that never answers, --timeout 2, c=500;"
              f" bound {n_hang}/{c} x {timeout:.0f} s + {rest_wall * (n - n_hang) / n:.2f} s"
              f" = {bound:.2f} s", flush=True)
        out = os.path.join(tmp, "out-hang")
        clients = with_before(a, {"ringfetch": [a.ringfetch, "fetch", "-c", str(c), "-t",
                                                str(a.threads), "--timeout", "2", "-i", urls]})
        res = {k: [] for k in clients}
        for r in range(a.rounds):
            for name in round_order(clients, r):
                m, err = measure(clients[name], out)
                check_rows(out, n, {"refused": n_refused, "timeout": n_hang})
                res[name].append(m)
                show_round(r, name, m)
        for name, ms in res.items():
            show(name, ms)
        print(f"  wall/bound {median(res['ringfetch'], 'wall') / bound:.3f} (target <= 1.2)"
              + (f"; ringfetch-before {median(res[BEFORE], 'wall') / bound:.3f}"
                 if BEFORE in res else ""), flush=True)
        show_before(res)


def part3(a, tmp, ports, refused):
    n = 1000000
    urls = os.path.join(tmp, "urls-1m.txt")
    write_list(urls, n, ports, refused)
    n_refused = sum(1 for i in range(n) if i % 100 == 50)
    out = os.path.join(tmp, "out-1m")
    print(f"part 3: {n} URLs, c=1000", flush=True)
    clients = with_before(a, {"ringfetch": [a.ringfetch, "fetch", "-c", "1000", "-t",
                                            str(a.threads), "-i", urls]})
    res = {}
    for name, cmd in clients.items():
        m, err = measure(cmd, out)
        check_rows(out, n, {"refused": n_refused})
        res[name] = [m]
        print(f"  {name:<16} wall {m.wall:.2f} s  cpu {m.cpu:.2f} s  peak rss {m.rss_mb:.1f} MB"
              + (" (target < 100 MB)" if name == "ringfetch" else ""), flush=True)
    show_before(res)


def part4(a, tmp):
    """10,000 https URLs over 50 ports: ringfetch against curl --parallel, both verifying."""
    n, c = a.https_urls, 500
    pki = harness.TestPKI(os.path.join(tmp, "pki"))
    with harness.Nginx(n_ports=a.https_ports, workers=a.nginx_workers,
                       tls=dict(cert=pki.server_cert, key=pki.server_key)) as ng:
        urls = os.path.join(tmp, "urls-https.txt")
        with open(urls, "w") as f:
            for i in range(n):
                f.write(f"https://127.0.0.1:{ng.ports[i % len(ng.ports)]}/?i={i}\n")
        curl_cfg = os.path.join(tmp, "urls-https.curl")
        with open(urls) as src, open(curl_cfg, "w") as dst:
            for line in src:
                dst.write(f'url = "{line.strip()}"\noutput = "/dev/null"\n')
        clients = {
            "ringfetch": [a.ringfetch, "fetch", "-c", str(c), "-t", str(a.threads), "-q",
                          "--cacert", pki.ca_cert, "-i", urls],
            "curl": ["curl", "--parallel", "--parallel-max", str(c), "-s", "--cacert",
                     pki.ca_cert, "-K", curl_cfg, "-w", "%{http_code} %{num_connects}\\n"],
        }
        clients = with_before(a, clients)
        out = os.path.join(tmp, "out-https")
        res = {k: [] for k in clients}
        print(f"part 4: {n} https URLs over {len(ng.ports)} nginx ports (test CA, --cacert), "
              f"c={c}", flush=True)
        for r in range(a.rounds):
            for name in round_order(clients, r):
                m, err = measure(clients[name], out)
                if m.rc != 0:
                    raise SystemExit(f"{name} exited {m.rc}: {err[-2000:]}")
                if name in ("ringfetch", BEFORE):
                    tls = {}
                    rows = check_rows(out, n, {}, tls)
                    with open(out) as f:
                        seen = {(row["status"], row.get("tls_version"))
                                for row in map(json.loads, f)}
                    if seen != {(200, "TLSv1.3")}:
                        raise SystemExit(f"{name}: (status, TLS version) {sorted(seen)}")
                    note = (f"{rows} rows, all 200 over TLS 1.3, {tls.get('full', 0)} full "
                            f"handshakes, {tls.get('resumed', 0)} resumed, "
                            f"{tls.get('reused', 0)} requests on open connections")
                else:
                    with open(out) as f:
                        results = [line.split() for line in f]
                    codes = {row[0] for row in results}
                    if len(results) != n or codes != {"200"}:
                        raise SystemExit(f"curl: {len(results)} results for {n} URLs, codes "
                                         f"{sorted(codes)}\n{err[-2000:]}")
                    note = (f"{len(results)} results, all 200, "
                            f"{sum(int(row[1]) for row in results)} connections")
                res[name].append(m)
                show_round(r, name, m, note)
    print("part 4 medians:")
    for name, ms in res.items():
        show(name, ms)
    rf, cu = res["ringfetch"], res["curl"]
    wall, cpu = (median(rf, k) / median(cu, k) for k in ("wall", "cpu"))
    print(f"  ringfetch/curl wall {wall:.3f} ({'met' if wall < 1 else 'NOT met'}: < 1)"
          f"   cpu {cpu:.3f} ({'met' if cpu < 1 else 'NOT met'}: < 1)"
          f"   rss {median(rf, 'rss_mb') / median(cu, 'rss_mb'):.3f}", flush=True)
    show_before(res)


def plain_parts(a, parts, tmp, ng):
    """Parts 1-3 against one plain-HTTP nginx."""
    refused = harness.free_ports(10)
    rest_wall = None
    if 1 in parts:
        rest_wall = part1(a, tmp, ng.ports, refused)
    if 2 in parts:
        if rest_wall is None:
            urls = os.path.join(tmp, "urls.txt")
            write_list(urls, a.urls, ng.ports, refused)
            rest_wall = statistics.median(
                measure([a.ringfetch, "fetch", "-c", "500", "-i", urls],
                        os.path.join(tmp, "out"))[0].wall for _ in range(3))
        part2(a, tmp, ng.ports, refused, rest_wall)
    if 3 in parts:
        part3(a, tmp, ng.ports, refused)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=100000)
    ap.add_argument("--ports", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", default="1,2,3", help="4 is HTTPS, not in the default")
    ap.add_argument("--https-urls", type=int, default=10000)
    ap.add_argument("--https-ports", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1, help="ringfetch -t")
    ap.add_argument("--nginx-workers", type=int, default=1)
    ap.add_argument("--no-aiohttp", action="store_true", help="skip the slowest peer")
    ap.add_argument("--ringfetch", default=os.path.join(ROOT, "build", "ringfetch"))
    ap.add_argument("--policy", action="store_true",
                    help="part 1 also runs ringfetch -L --retries 2 (the refused 1%% are "
                         "retried twice), against the run without")
    ap.add_argument("--before", metavar="PATH",
                    help="an older ringfetch binary, run as ringfetch-before in the same rounds")
    a = ap.parse_args()
    if a.before and not os.access(a.before, os.X_OK):
        raise SystemExit(f"--before {a.before}: not an executable")
    parts = {int(p) for p in a.parts.split(",")}
    def out(cmd):
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout

    print(f"ringfetch: {out([a.ringfetch, '--version']).strip()}"
          f"; curl: {out(['curl', '--version']).split()[1]}"
          f"; nginx workers {a.nginx_workers}; unpinned; {os.cpu_count()} CPUs"
          + (f"; {BEFORE} {a.before}: {out([a.before, '--version']).strip()}"
             if a.before else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        if parts & {1, 2, 3}:
            with harness.Nginx(n_ports=a.ports, workers=a.nginx_workers) as ng:
                plain_parts(a, parts, tmp, ng)
        if 4 in parts:
            part4(a, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
