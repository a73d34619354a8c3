"""ringfetch's resolver end to end: --dns-server against tests/servers/dnsserver.py, one query
per host and record type, NXDOMAIN and silent servers, --resolve, the hosts file, IPv6."""
import collections
import http.server
import os
import socket
import subprocess
import threading
import time

import harness

HOSTS_PROGRAM = r"""
#include <stdio.h>
#include <ringfetch.h>

static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    printf("%llu %d %s %s\n", (unsigned long long)r->index, r->status, rf_strerror(r->error),
           r->ip ? r->ip : "-");
}

/* argv: hosts file, DNS server, URLs. */
int main(int argc, char **argv)
{
    rf_config cfg;
    rf_engine *eng;
    rf_error err;

    rf_config_init(&cfg);
    cfg.hosts_file = argv[1];
    cfg.dns_server = argv[2];
    cfg.timeout_ms = 20000;
    cfg.on_result = on_result;
    err = rf_engine_create(&eng, &cfg);
    if (err != RF_OK) {
        fprintf(stderr, "rf_engine_create: %s\n", rf_strerror(err));
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        rf_request req = {.url = argv[i]};

        rf_submit(eng, &req);
    }
    err = rf_run(eng);
    rf_engine_destroy(eng);
    return err == RF_OK ? 0 : 1;
}
"""


def dns_server(ctx, names=None, mode="answer"):
    return harness.DnsServer(names, mode=mode, log=os.path.join(ctx.tmpdir, "dns.log"))


def counts(dns, names):
    """{(qname, qtype): n} for the names asked about (search-list variants left out)."""
    return dict(collections.Counter(q for q in dns.queries() if q[0] in names))


def test_dns_server_resolves_to_nginx(ctx):
    """Four ports of one host: one A and one AAAA query; each row gets its own port."""
    urls = [f"http://web.test:{p}/" for p in ctx.nginx.ports]
    with dns_server(ctx, {"web.test": "127.0.0.1"}) as dns:
        rc, rows, err = ctx.fetch(["--dns-server", dns.server] + urls)
        asked = counts(dns, {"web.test"})
    assert rc == 0, err
    assert [r["url"] for r in rows] == urls, rows
    for i, row in enumerate(rows):
        assert row["index"] == i, row
        assert (row["status"], row["error"], row["bytes"]) == (200, None, 12), row
        assert row["ip"] == "127.0.0.1", row
    assert asked == {("web.test", "A"): 1, ("web.test", "AAAA"): 1}, asked


def test_one_query_per_host_and_type(ctx):
    """300 URLs over two hosts at -c 50: lookups made while a query runs wait on it, later
    ones hit the cache. A host with both records is reached over IPv4."""
    ports = ctx.nginx.ports
    urls = [f"http://{'ab'[i % 2]}.test:{ports[i % len(ports)]}/?i={i}" for i in range(300)]
    names = {"a.test": "127.0.0.1", "b.test": ["::1", "127.0.0.1"]}
    with dns_server(ctx, names) as dns:
        rc, rows, err = ctx.fetch(["-t", "1", "-c", "50", "--dns-server", dns.server, "-i", "-"],
                                  input_text="\n".join(urls) + "\n")
        asked = counts(dns, set(names))
    assert rc == 0, err
    assert len(rows) == 300, len(rows)
    for i, row in enumerate(rows):
        assert (row["index"], row["url"]) == (i, urls[i]), row
        assert (row["status"], row["error"], row["ip"]) == (200, None, "127.0.0.1"), row
    assert asked == {("a.test", "A"): 1, ("a.test", "AAAA"): 1,
                     ("b.test", "A"): 1, ("b.test", "AAAA"): 1}, asked


def test_nxdomain_rows_in_order(ctx):
    """Unknown names give "dns" rows in their places; at -c 1 the second lookup of a failed
    name is answered by the negative cache, without a query."""
    p = ctx.nginx.ports
    urls = [f"http://good.test:{p[0]}/", f"http://nx1.test:{p[0]}/", f"http://good.test:{p[1]}/",
            f"http://nx1.test:{p[1]}/", f"http://good.test:{p[2]}/", f"http://nx2.test:{p[0]}/"]
    with dns_server(ctx, {"good.test": "127.0.0.1"}) as dns:
        rc, rows, err = ctx.fetch(["-c", "1", "--dns-server", dns.server] + urls)
        asked = counts(dns, {"nx1.test", "nx2.test"})
    assert rc == 0, err
    assert [r["url"] for r in rows] == urls, rows
    assert [(r["status"], r["error"]) for r in rows] == [
        (200, None), (None, "dns"), (200, None), (None, "dns"), (200, None), (None, "dns")], rows
    assert [r["ip"] for r in rows if r["error"]] == [None, None, None], rows
    assert "errors: 3 (dns 3)" in err, err
    assert asked == {("nx1.test", "A"): 1, ("nx1.test", "AAAA"): 1,
                     ("nx2.test", "A"): 1, ("nx2.test", "AAAA"): 1}, asked


def test_silent_server_fails_in_bounded_time(ctx):
    """No answer at all: two tries (2 s, then c-ares doubles it to 4 s) end in "dns" rows,
    and a literal address between them is fetched meanwhile."""
    port = ctx.nginx.ports[0]
    urls = [f"http://quiet1.test:{port}/", f"http://127.0.0.1:{port}/",
            f"http://quiet2.test:{port}/"]
    with dns_server(ctx, mode="silent") as dns:
        t0 = time.monotonic()
        rc, rows, err = ctx.fetch(["--timeout", "30", "--dns-server", dns.server] + urls,
                                  timeout=30)
        elapsed = time.monotonic() - t0
        asked = counts(dns, {"quiet1.test"})
    assert rc == 0, err
    assert [(r["url"], r["status"], r["error"]) for r in rows] == [
        (urls[0], None, "dns"), (urls[1], 200, None), (urls[2], None, "dns")], rows
    assert 1.5 < elapsed < 10, elapsed
    assert asked == {("quiet1.test", "A"): 2, ("quiet1.test", "AAAA"): 2}, asked


test_silent_server_fails_in_bounded_time.timeout = 40


def test_resolve_bypasses_dns(ctx):
    """--resolve entries (exact port, any port '*', any case) answer without a query."""
    p = ctx.nginx.ports
    urls = [f"http://pinned.test:{p[0]}/", f"http://ANY.test:{p[1]}/", f"http://any.test:{p[2]}/"]
    with dns_server(ctx, mode="silent") as dns:
        t0 = time.monotonic()
        rc, rows, err = ctx.fetch(["--dns-server", dns.server,
                                   "--resolve", f"pinned.test:{p[0]}:127.0.0.1",
                                   "--resolve", "any.test:*:127.0.0.1"] + urls)
        elapsed = time.monotonic() - t0
        asked = dns.queries()
    assert rc == 0, err
    assert [(r["url"], r["status"], r["ip"]) for r in rows] == [
        (u, 200, "127.0.0.1") for u in urls], rows
    assert elapsed < 3, elapsed  # a query to the silent server would take 6 s
    assert asked == [], asked


class _Hello6(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"hello v6\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


def test_ipv6(ctx):
    """The test nginx listens on 127.0.0.1 only, so a small HTTP server on [::1] stands in:
    a literal, an AAAA-only name and a bracketed --resolve address all reach it."""
    try:
        srv = _Server6(("::1", 0), _Hello6)
    except OSError as e:
        ctx.skip(f"no IPv6 loopback: {e}")
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        port = srv.server_address[1]
        urls = [f"http://[::1]:{port}/", f"http://v6.test:{port}/", f"http://r6.test:{port}/"]
        with dns_server(ctx, {"v6.test": "::1"}) as dns:
            rc, rows, err = ctx.fetch(["--dns-server", dns.server,
                                       "--resolve", f"r6.test:{port}:[::1]"] + urls)
            asked = counts(dns, {"v6.test", "r6.test"})
    finally:
        srv.shutdown()
        srv.server_close()
    assert rc == 0, err
    assert [(r["url"], r["status"], r["error"], r["bytes"], r["ip"]) for r in rows] == [
        (u, 200, None, 9, "::1") for u in urls], rows
    assert asked == {("v6.test", "A"): 1, ("v6.test", "AAAA"): 1}, asked


def test_bad_dns_server_and_resolve_are_usage_errors(ctx):
    url = f"http://127.0.0.1:{ctx.refused_port()}/"
    cases = [["--dns-server", s] for s in ("not-an-address", "", "127.0.0.1:99999",
                                           "127.0.0.1:", "127.0.0.1:0", "1.2.3.4,")]
    cases += [["--resolve", s] for s in ("web.test:80", "web.test:80:not-an-ip",
                                         "web.test:0:127.0.0.1", ":80:127.0.0.1",
                                         "web.test:80:[::1")]
    for args in cases:
        rc, rows, err = ctx.fetch(args + [url], timeout=10)
        assert rc == 2, (args, rc, err)
        assert rows == [], (args, rows)
        assert f"{args[0]}: bad value" in err, (args, err)


def test_hosts_file_through_api(ctx):
    """rf_config.hosts_file: the first line naming a host wins, names match in any case,
    comments are ignored, and no query is sent for a name found there."""
    p = ctx.nginx.ports[0]
    hosts = os.path.join(ctx.tmpdir, "hosts")
    with open(hosts, "w") as f:
        f.write("# test hosts\n"
                "127.0.0.1   Web.Hosts.Test   alias.hosts.test  # trailing comment\n"
                "127.0.0.2   web.hosts.test\n"
                "#127.0.0.3  commented.hosts.test\n")
    exe = ctx.compile_c("hosts_api", HOSTS_PROGRAM)
    with dns_server(ctx, {"commented.hosts.test": "127.0.0.1"}) as dns:
        r = subprocess.run([exe, hosts, dns.server, f"http://web.hosts.test:{p}/",
                            f"http://ALIAS.hosts.test:{p}/", f"http://localhost:{p}/",
                            f"http://commented.hosts.test:{p}/"],
                           capture_output=True, text=True, timeout=30)
        asked = dns.queries()
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["0 200 ok 127.0.0.1", "1 200 ok 127.0.0.1",
                                     "2 200 ok 127.0.0.1", "3 200 ok 127.0.0.1"], r.stdout
    assert sorted(asked) == [("commented.hosts.test", "A"),
                             ("commented.hosts.test", "AAAA")], asked
