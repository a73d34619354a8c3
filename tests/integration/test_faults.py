"""Faults from the environment: a full disk, exhausted local ports, memory under hostile servers."""
import json
import os
import subprocess
import time


def test_full_disk_is_an_error_not_a_silent_loss(ctx):
    urls = [ctx.nginx.url("/", i % 4) for i in range(50)]
    for args, where in ((["-o", "/dev/full"], "/dev/full"), ([], "standard output")):
        with open("/dev/full", "w") as full:
            r = subprocess.run([ctx.ringfetch, "fetch", "-q"] + args + urls, stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=30)
        assert r.returncode == 1, r
        assert f"cannot write the rows to {where}: No space left on device" in r.stderr, r.stderr


def in_own_netns(ctx, script, timeout=60):
    """Run a shell script as root in a network namespace of its own (loopback up)."""
    if os.geteuid() != 0:
        ctx.skip("needs root for unshare -n")
    r = subprocess.run(["unshare", "-n", "sh", "-ec", "ip link set lo up\n" + script],
                       capture_output=True, text=True, timeout=timeout)
    return r


def test_local_ports_exhausted_give_resource_rows(ctx):
    """8 local ports for 40 concurrent connections: the rest back off, then report resource."""
    inp = os.path.join(ctx.tmpdir, "urls.txt")
    with open(inp, "w") as f:
        f.write("".join(f"http://127.0.0.1:8099/?{i}\n" for i in range(200)))
    script = f"""
echo '40000 40007' > /proc/sys/net/ipv4/ip_local_port_range
/usr/bin/python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8099)); s.listen(1024); time.sleep(30)' &
sleep 0.5
'{ctx.ringfetch}' fetch -c 40 --timeout 5 -i '{inp}'
kill $! 2>/dev/null || true
"""
    r = in_own_netns(ctx, script)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert [x["index"] for x in rows] == list(range(200)), "a row lost or out of order"
    errors = {x["error"] for x in rows}
    # The listener never answers: the 8 that connect time out; the others run out of ports.
    assert errors <= {"resource", "timeout"} and "resource" in errors, errors
    assert "resource" in r.stderr, r.stderr


def peak_rss_mb(ctx, cmd, timeout):
    """Run cmd with its output in files (no pipe to fill); exit code, stdout, stderr, MB."""
    out_path = os.path.join(ctx.tmpdir, "out")
    err_path = os.path.join(ctx.tmpdir, "err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{cmd[:3]} ran over {timeout} s")
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path) as out, open(err_path) as err:
        return proc.returncode, out.read(), err.read(), ru.ru_maxrss / 1024.0


def test_memory_bounded_with_1000_trickling_and_1000_endless(ctx):
    """1,000 servers trickling a byte a second and 1,000 endless bodies, at once."""
    urls = [ctx.bad.url("trickle", f"/{i}") for i in range(1000)]
    urls += [ctx.bad.url("endless", f"/{i}") for i in range(1000)]
    inp = os.path.join(ctx.tmpdir, "hostile.txt")
    with open(inp, "w") as f:
        f.write("\n".join(urls) + "\n")
    rc, out, err, rss = peak_rss_mb(ctx, [ctx.ringfetch, "fetch", "-c", "2000", "--timeout", "4",
                                          "--max-body", "1M", "-i", inp], timeout=100)
    assert rc == 0, err
    rows = [json.loads(l) for l in out.splitlines()]
    assert len(rows) == 2000
    assert {r["error"] for r in rows[:1000]} == {"timeout"}, rows[:3]
    assert {r["error"] for r in rows[1000:]} <= {"too_large", "timeout"}, rows[1000:1003]
    # The read that crosses --max-body is counted, so a row may pass the cap by one buffer.
    assert all(r["bytes"] <= (1 << 20) + 16384 for r in rows), max(r["bytes"] for r in rows)
    limit = 100 if not ctx.sanitize_flags else 400  # ASan's shadow memory and quarantine
    assert rss < limit, f"peak RSS {rss:.1f} MB"
    print(f"peak RSS {rss:.1f} MB")


test_memory_bounded_with_1000_trickling_and_1000_endless.timeout = 120
