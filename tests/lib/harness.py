#!/usr/bin/python3
"""Shared helpers for ringfetch's integration tests, benchmarks and demo: free loopback
ports, waiting for a port, a private nginx, the misbehaving badserver, a test DNS server,
running ringfetch; and the test worlds of the last section: DelayServer (answers exactly
D us after each request), the count-log helpers, Blackhole (a port that drops SYNs),
nginx beside a black hole, a tickets-only TLS 1.2 nginx and the redirect world.

As a script it runs nginx in the foreground for benchmark scripts:
    harness.py nginx --ports 100 --workers 1 --cpu 0 [--tls] [--host 127.0.0.1 --host ::1]
prints {"ports": [...], "pid": N, "prefix": DIR} once every port accepts (with --tls also
"scheme": "https" and "ca": the test CA to pass as --cacert), and stops nginx on SIGTERM,
SIGINT or end of stdin. `harness.py nginx --print-config --prefix DIR ...`
only writes DIR/nginx.conf and DIR/html/ and prints the configuration.
"""
import argparse
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BADSERVER = os.path.join(ROOT, "tests", "servers", "badserver.py")
DNSSERVER = os.path.join(ROOT, "tests", "servers", "dnsserver.py")
PYTHON = "/usr/bin/python3"
NGINX = "/usr/sbin/nginx"

HELLO = b"hello world\n"
UNLIMITED_REQUESTS = 1000000000  # nginx has no "unlimited": a count no run reaches


def free_ports(n, host="127.0.0.1"):
    """n distinct ports that were free a moment ago (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def recv_until_close(sock, limit=1 << 30):
    """What a socket (plain or TLS) receives until the peer closes, or the first limit
    bytes of it."""
    buf = bytearray()
    for _ in range(100000):
        data = sock.recv(65536)
        if not data:
            break
        buf += data
        if len(buf) >= limit:
            break
    return bytes(buf)


def wait_port(host, port, timeout=10.0):
    """Returns once host:port accepts a connection; raises TimeoutError after timeout s."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    last = None
    for _ in range(100000):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.create_connection((host, port), timeout=min(1.0, left)):
                return
        except OSError as e:
            last = e
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)
    raise TimeoutError(f"{host}:{port} did not accept within {timeout} s ({last})")


def _stop_group(proc, first_signal, grace):
    """Signals proc's process group, waits up to grace s, then SIGKILLs the group."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, first_signal)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # also takes any worker left behind
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


# ----------------------------------------------------------------------- PKI


class TestPKI:
    """A throwaway PKI for HTTPS tests, made in dirpath with the openssl command (EC P-256
    keys, valid for `days`; about ten openssl runs, well under a second). PEM paths:

      ca_cert, ca_key            the test CA; no system bundle trusts it
      server_cert, server_key    CA-signed, subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1
      wrong_cert, wrong_key      CA-signed for DNS:wrong.example only (and CN wrong.example)
      self_cert, self_key        self-signed for the same names as server_cert; CA:TRUE as
                                 `openssl req -x509` makes it, so that it can also be given as
                                 its own trust anchor (wolfSSL refuses to load a non-CA one)
    .issue(name, sans) signs more leaves: sans like ["DNS:a.test", "IP:127.0.0.2"].
    """

    SERVER_SANS = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]

    def __init__(self, dirpath, days=30):
        self.dir = os.path.abspath(dirpath)
        self.days = int(days)
        os.makedirs(self.dir, exist_ok=True)
        self._conf = os.path.join(self.dir, "openssl.cnf")
        with open(self._conf, "w") as f:
            # Our own configuration, so the system's openssl.cnf defaults cannot add to it.
            f.write("[req]\ndistinguished_name = dn\n[dn]\n"
                    "[ca_ext]\nbasicConstraints = critical, CA:TRUE\n"
                    "keyUsage = critical, keyCertSign, cRLSign\n"
                    "subjectKeyIdentifier = hash\n")
        self.ca_key = self._key("ca")
        self.ca_cert = os.path.join(self.dir, "ca.pem")
        self._openssl("req", "-x509", "-new", "-key", self.ca_key, "-subj",
                      "/CN=ringfetch test CA", "-config", self._conf, "-extensions", "ca_ext",
                      "-set_serial", self._serial(), "-days", str(self.days), "-out", self.ca_cert)
        self.server_cert, self.server_key = self.issue("server", self.SERVER_SANS)
        self.wrong_cert, self.wrong_key = self.issue("wrong", ["DNS:wrong.example"])
        self.self_key = self._key("self")
        self.self_cert = os.path.join(self.dir, "self.pem")
        ext = self._extfile("self", self.SERVER_SANS, ca=True)
        self._openssl("req", "-x509", "-new", "-key", self.self_key, "-subj", "/CN=localhost",
                      "-config", ext, "-extensions", "leaf", "-set_serial", self._serial(),
                      "-days", str(self.days), "-out", self.self_cert)

    def issue(self, name, sans, cn=None):
        """A leaf for the names in sans signed by the test CA; (cert path, key path)."""
        key = self._key(name)
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        cn = cn or sans[0].split(":", 1)[1]
        self._openssl("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-config", self._conf,
                      "-out", csr)
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                      "-set_serial", self._serial(), "-days", str(self.days),
                      "-extfile", self._extfile(name, sans), "-extensions", "leaf", "-out", cert)
        return cert, key

    def _key(self, name):
        path = os.path.join(self.dir, name + ".key")
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", path)
        return path

    def _extfile(self, name, sans, ca=False):
        path = os.path.join(self.dir, name + ".cnf")
        usage = "digitalSignature, keyCertSign" if ca else "digitalSignature"
        with open(path, "w") as f:
            f.write("[req]\ndistinguished_name = dn\n[dn]\n[leaf]\n"
                    f"basicConstraints = critical, CA:{'TRUE' if ca else 'FALSE'}\n"
                    f"keyUsage = critical, {usage}\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectKeyIdentifier = hash\n"
                    + ("" if ca else "authorityKeyIdentifier = keyid\n")
                    + f"subjectAltName = {', '.join(sans)}\n")
        return path

    @staticmethod
    def _serial():
        return "0x1" + os.urandom(7).hex()  # positive, under 2^63, unique in practice

    @staticmethod
    def _openssl(*args):
        r = subprocess.run(["openssl"] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args[:2])} failed: {r.stderr.strip()[-2000:]}")


# --------------------------------------------------------------------- nginx


def cpu_masks(cpus, workers):
    """worker_cpu_affinity masks: worker i is pinned to cpus[i % len(cpus)]."""
    width = max(cpus) + 1
    return " ".join(format(1 << cpus[i % len(cpus)], "0%db" % width) for i in range(workers))


def parse_cpus(text):
    """'0', '0,2', '0-3' -> [0], [0, 2], [0, 1, 2, 3]."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


TLS_DEFAULTS = {"cert": None, "key": None, "protocols": "TLSv1.2 TLSv1.3",
                "session_tickets": True, "session_cache": True}
ACCESS_FIELDS = ("connection", "requests", "protocol", "reused", "sni", "alpn", "status",
                 "bytes", "method", "uri")


def tls_settings(tls):
    """TLS_DEFAULTS updated with the dict tls; an unknown key or a missing file is an error."""
    unknown = set(tls) - set(TLS_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown tls settings: {sorted(unknown)}")
    out = dict(TLS_DEFAULTS, **tls)
    for k in ("cert", "key"):
        if not out[k] or not os.path.isfile(out[k]):
            raise ValueError(f"tls {k} {out[k]!r} is not a file")
    return out


def write_nginx_prefix(prefix, ports, workers=1, cpus=None, worker_connections=4096,
                       rlimit_nofile=None, keepalive_requests=1000, keepalive_timeout="75s",
                       backlog=4096, reuseport=False, tls=None, access_log=None, ipv6=False,
                       hosts=None):
    """Writes prefix/nginx.conf and prefix/html/ for a private nginx; returns the config path.

    Locations (on every port):
      /            200 "hello world\\n" (12 bytes, text/plain), for any path not below
      /static/     files of prefix/html: index.html, 1k.bin, 64k.bin (65536 bytes), 1m.bin
      /redirect    301, Location: /
      /status/404  404 "not found\\n" (10 bytes)
      /chunked     index.html through sub_filter, which drops Content-Length, so nginx
                   answers HTTP/1.1 with Transfer-Encoding: chunked
    keepalive_requests may be "unlimited"; cpus is a list of CPU numbers or None; reuseport
    gives every worker its own listening socket, so connections spread evenly over them.

    tls=dict(cert=PEM, key=PEM, protocols="TLSv1.2 TLSv1.3", session_tickets=True,
    session_cache=True) makes every port HTTPS with the same locations; protocols="TLSv1.3"
    gives a TLS-1.3-only server. The session cache is shared:rf:1m, so resumption works by
    session ID (TLS 1.2) as well as by ticket.
    ipv6=True listens on [::1] too, on the same port numbers. hosts=["127.0.0.1", "::1"]
    names the addresses every port listens on instead (any loopback ones, e.g. 127.0.0.2).
    access_log=True writes prefix/access.log (a path: there), one line per request with the
    fields of ACCESS_FIELDS separated by spaces, "-" when empty: $connection,
    $connection_requests, $ssl_protocol, $ssl_session_reused ("r" resumed, "." full),
    $ssl_server_name (the SNI), $ssl_alpn_protocol, $status, $body_bytes_sent, $request_method, $request_uri.
    """
    tls = tls_settings(tls) if tls else None
    html = os.path.join(prefix, "html")
    os.makedirs(html, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(prefix, "tmp", sub), exist_ok=True)
    with open(os.path.join(html, "index.html"), "w") as f:
        f.write("<!doctype html>\n<title>ringfetch</title>\n<p>ringfetch test page</p>\n")
    for name, size in (("1k.bin", 1024), ("64k.bin", 65536), ("1m.bin", 1 << 20)):
        with open(os.path.join(html, name), "wb") as f:
            f.write(bytes(i & 0xff for i in range(256)) * (size // 256))

    if keepalive_requests == "unlimited":
        keepalive_requests = UNLIMITED_REQUESTS
    if rlimit_nofile is None:
        rlimit_nofile = 2 * worker_connections + len(ports) + 64
    lines = []
    if os.geteuid() == 0:
        lines.append("user root;")  # else workers run as nobody and cannot read the prefix
    lines += [
        f"worker_processes {int(workers)};",
        f"worker_rlimit_nofile {int(rlimit_nofile)};",
        f"pid {prefix}/nginx.pid;",
        f"error_log {prefix}/error.log warn;",
    ]
    if cpus:
        lines.append(f"worker_cpu_affinity {cpu_masks(list(cpus), int(workers))};")
    if access_log:
        path = os.path.join(prefix, "access.log") if access_log is True else access_log
        log = ["    log_format rf '$connection $connection_requests $ssl_protocol "
               "$ssl_session_reused $ssl_server_name $ssl_alpn_protocol $status $body_bytes_sent "
               "$request_method $request_uri';",
               f"    access_log {path} rf;"]
    else:
        log = ["    access_log off;"]
    lines += [
        "events {",
        f"    worker_connections {int(worker_connections)};",
        "}",
        "http {",
    ] + log + [
        "    server_tokens off;",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    tcp_nodelay on;",
        f"    keepalive_requests {int(keepalive_requests)};",
        f"    keepalive_timeout {keepalive_timeout};",
        "    absolute_redirect off;",
        "    types { text/html html; application/octet-stream bin; }",
        "    default_type application/octet-stream;",
    ]
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        key = "client_body" if sub == "body" else sub
        lines.append(f"    {key}_temp_path {prefix}/tmp/{sub};")
    lines.append("    server {")
    for port in ports:
        for addr in listen_hosts(hosts, ipv6, brackets=True):
            lines.append(f"        listen {addr}:{int(port)}" + (" ssl" if tls else "")
                         + f" backlog={int(backlog)}" + (" reuseport;" if reuseport else ";"))
    if tls:
        lines += [
            f"        ssl_certificate {tls['cert']};",
            f"        ssl_certificate_key {tls['key']};",
            f"        ssl_protocols {tls['protocols']};",
            f"        ssl_session_tickets {'on' if tls['session_tickets'] else 'off'};",
            "        ssl_session_cache " + ("shared:rf:1m" if tls["session_cache"] else "off")
            + ";",
            "        ssl_session_timeout 10m;",
        ]
    lines += [
        "        location / {",
        "            default_type text/plain;",
        '            return 200 "hello world\\n";',
        "        }",
        "        location /static/ {",
        f"            alias {html}/;",
        "        }",
        "        location = /redirect {",
        "            return 301 /;",
        "        }",
        "        location = /status/404 {",
        "            default_type text/plain;",
        '            return 404 "not found\\n";',
        "        }",
        "        location = /chunked {",
        f"            alias {html}/index.html;",
        "            default_type text/html;",
        "            sub_filter 'test page' 'chunked page';",
        "        }",
        "    }",
        "}",
    ]
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return conf


def listen_hosts(hosts=None, ipv6=False, brackets=False):
    """The addresses a private nginx listens on: hosts, else 127.0.0.1 (and ::1 with ipv6);
    IPv6 ones in brackets for nginx's listen directive when brackets is true."""
    out = list(hosts) if hosts else ["127.0.0.1"] + (["::1"] if ipv6 else [])
    return [f"[{h}]" if brackets and ":" in h else h for h in out]


class Nginx:
    """A private nginx on loopback ports; use as a context manager.

    Nginx(n_ports=4) picks free ports; Nginx(ports=[...]) uses the given ones. prefix=DIR
    writes the configuration there and keeps it; by default a temporary directory is used and
    removed on exit. Other keyword arguments go to write_nginx_prefix(): tls=dict(cert=...,
    key=..., protocols=...) for HTTPS, access_log=True for a log .log_entries() reads,
    ipv6=True to listen on [::1] too (url(host="[::1]")), hosts=[...] for other addresses.
    Attributes: .ports, .urls(path), .url(path, i), .scheme ("http" or "https"), .prefix,
    .pid (the master).
    """

    def __init__(self, ports=None, n_ports=4, start_timeout=15.0, prefix=None, **conf):
        self.ports = list(ports) if ports else free_ports(n_ports)
        self.conf = conf
        self.scheme = "https" if conf.get("tls") else "http"
        self.start_timeout = start_timeout
        self.keep_prefix = prefix is not None  # a given prefix is left in place
        self.given_prefix = prefix
        self.prefix = None
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def url(self, path="/", i=0, host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.ports[i]}{path}"

    def urls(self, path="/", host="127.0.0.1"):
        return [f"{self.scheme}://{host}:{p}{path}" for p in self.ports]

    @property
    def access_log_path(self):
        log = self.conf.get("access_log")
        if not log or self.prefix is None:
            return None
        return os.path.join(self.prefix, "access.log") if log is True else log

    def log_entries(self, contains=None, count=0, timeout=5.0):
        """The access log's lines as dicts (keys ACCESS_FIELDS), those whose uri contains
        `contains` only. nginx logs a request just after answering it, so this waits up to
        timeout s for at least `count` of them; it returns what it has then."""
        path = self.access_log_path
        if path is None:
            raise RuntimeError("this nginx has no access log (access_log=True)")
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                text = ""
            out = []
            for line in text.splitlines():
                parts = line.split(" ", len(ACCESS_FIELDS) - 1)
                if len(parts) == len(ACCESS_FIELDS):
                    entry = dict(zip(ACCESS_FIELDS, parts))
                    if contains is None or contains in entry["uri"]:
                        out.append(entry)
            if len(out) >= count or time.monotonic() >= deadline:
                return out
            time.sleep(0.02)
        return out

    def error_log(self):
        try:
            with open(os.path.join(self.prefix, "error.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self):
        if self.keep_prefix:
            self.prefix = os.path.abspath(self.given_prefix)
            os.makedirs(self.prefix, exist_ok=True)
        else:
            self.prefix = tempfile.mkdtemp(prefix="rf-nginx-")
        conf = self._write_config()
        out = open(os.path.join(self.prefix, "stderr.log"), "wb")
        try:
            self.proc = subprocess.Popen(
                [NGINX, "-p", self.prefix, "-c", conf, "-e", os.path.join(self.prefix, "error.log"),
                 "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            out.close()
        deadline = time.monotonic() + self.start_timeout
        try:
            # nginx writes its pid file only once every listening socket is bound, so a port
            # somebody else already listens on cannot pass for ours.
            pidfile = os.path.join(self.prefix, "nginx.pid")
            for _ in range(100000):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nginx exited with {self.proc.returncode}: "
                                       + self.error_log())
                if os.path.exists(pidfile) or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            if not os.path.exists(pidfile):
                raise TimeoutError(f"nginx not ready in {self.start_timeout} s: "
                                   + self.error_log())
            for host in listen_hosts(self.conf.get("hosts"), self.conf.get("ipv6")):
                for port in self.ports:
                    wait_port(host, port, max(0.1, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self):
        """Writes the prefix; returns the nginx.conf path (subclasses write their own)."""
        return write_nginx_prefix(self.prefix, self.ports, **self.conf)

    def stop(self):
        if self.proc is not None:
            _stop_group(self.proc, signal.SIGQUIT, 10.0)
            self.proc = None
        if self.prefix and not self.keep_prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)
        self.prefix = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ----------------------------------------------------------------- badserver


class BadServer:
    """tests/servers/badserver.py in a child process; use as a context manager.

    .ports is {mode: port}; .port(mode); .url(mode, path='/'), an https:// URL for the tls-*
    modes and http:// for the others unless scheme says otherwise. .requests() reads the
    request log of the flaky and count modes (a temporary file unless request_log names one).
    """

    def __init__(self, trickle_interval=None, start_timeout=15.0, log=None, request_log=None):
        self.args = ["--exit-on-stdin-eof"]
        if trickle_interval is not None:
            self.args += ["--trickle-interval", str(trickle_interval)]
        self.own_request_log = request_log is None
        if request_log is None:
            fd, request_log = tempfile.mkstemp(prefix="rf-bad-", suffix=".jsonl")
            os.close(fd)
        self.request_log = request_log
        self.args += ["--request-log", request_log]
        self.start_timeout = start_timeout
        self.log = log
        self.proc = None
        self.ports = {}

    def requests(self, count=0, timeout=5.0, **match):
        """The request log's entries (dicts, see badserver.py) whose fields equal match,
        e.g. requests(mode="flaky", id="t1"); waits up to timeout s for count of them."""
        return read_json_lines(self.request_log, match, count, timeout)

    def port(self, mode):
        return self.ports[mode]

    def url(self, mode, path="/", scheme=None):
        scheme = scheme or ("https" if mode.startswith("tls-") else "http")
        return f"{scheme}://127.0.0.1:{self.ports[mode]}{path}"

    def start(self):
        err = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen([PYTHON, BADSERVER] + self.args, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err,
                                         start_new_session=True)
        finally:
            if self.log:
                err.close()
        try:
            line = _read_line(self.proc.stdout, self.start_timeout)
            if not line:
                raise RuntimeError(f"badserver exited with {self.proc.wait(5)} before listening")
            self.ports = json.loads(line)
            for port in self.ports.values():
                wait_port("127.0.0.1", port, self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc is not None:
            _end_child(self.proc)
            self.proc = None
        if self.own_request_log:
            try:
                os.unlink(self.request_log)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _end_child(proc):
    """End a test server started with --exit-on-stdin-eof: close its stdin, give it 5 s
    to leave, then signal its process group."""
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    _stop_group(proc, signal.SIGTERM, 5.0)
    proc.stdout.close()


# ----------------------------------------------------------------- dnsserver


class DnsServer:
    """tests/servers/dnsserver.py in a child process; use as a context manager.

    DnsServer({"web.test": "127.0.0.1"}, mode="answer"|"silent", ttl=60, log=PATH).
    A value may be a list of addresses, or one string "127.0.0.2,127.0.0.1,::1" (A for
    IPv4, AAAA for IPv6, answered in that order); a name may be punycode or Unicode
    ("bücher.test" is served as xn--bcher-kva.test). .port; .server is the
    "127.0.0.1:PORT" string for --dns-server; .queries() lists the (qname, qtype) pairs
    received so far, in order.
    """

    def __init__(self, names=None, mode="answer", ttl=60, log=None, start_timeout=15.0):
        self.args = ["--port", "0", "--mode", mode, "--ttl", str(int(ttl)),
                     "--exit-on-stdin-eof"]
        for name, addrs in (names or {}).items():
            for addr in ([addrs] if isinstance(addrs, str) else addrs):
                self.args += ["--map", f"{name}={addr}"]
        self.own_log = log is None
        if log is None:
            fd, log = tempfile.mkstemp(prefix="rf-dns-", suffix=".log")
            os.close(fd)
        self.log = log
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def queries(self):
        try:
            with open(self.log) as f:
                return [tuple(line.split()[:2]) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def start(self):
        self.proc = subprocess.Popen([PYTHON, DNSSERVER] + self.args + ["--log", self.log],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            line = _read_line(self.proc.stdout, self.start_timeout)
            if not line:
                raise RuntimeError(f"dnsserver exited with {self.proc.wait(5)} before binding")
            self.port = json.loads(line)["port"]  # printed once the socket is bound
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.proc is not None:
            _end_child(self.proc)
            self.proc = None
        if self.own_log:
            try:
                os.unlink(self.log)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _read_line(f, timeout):
    """One line from a pipe within timeout s ('' at EOF); TimeoutError otherwise."""
    fd = f.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    for _ in range(100000):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return buf.decode()
        buf += chunk
        if b"\n" in buf:
            return buf.split(b"\n", 1)[0].decode()
    raise TimeoutError(f"no line within {timeout} s")


# ------------------------------------------------------------------ ringfetch


def run_ringfetch(binary, args, input_text=None, timeout=60):
    """Runs binary with args; returns (returncode, rows, stderr), rows = stdout's JSON lines.

    A run past timeout s is killed and raises AssertionError; so does a non-JSON line.
    """
    try:
        r = subprocess.run([binary] + list(args), input=input_text, capture_output=True,
                           text=True, timeout=timeout,
                           stdin=None if input_text is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{os.path.basename(binary)} {' '.join(args)[:200]} "
                             f"still running after {timeout} s; stderr: {_tail(e.stderr)}")
    rows = []
    for n, line in enumerate(r.stdout.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"stdout line {n} is not JSON: {line[:300]!r}; "
                                 f"stderr: {_tail(r.stderr)}")
    return r.returncode, rows, r.stderr


def _tail(text, n=2000):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "")[-n:]


# ------------------------------------------------- delay server, black hole, nginx worlds
#
# The test worlds for timing, politeness, retries and redirects: DelayServer (a C server
# that answers D us after each request), read_json_lines() and the count-log helpers for
# badserver's request log, Blackhole (a port that drops SYNs), nginx beside a black hole,
# a tickets-only TLS 1.2 nginx and the redirect world.

DELAYSERVER_SRC = os.path.join(ROOT, "tests", "servers", "delayserver.c")
DELAYSERVER_CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wshadow",
                      "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wformat=2", "-Wvla"]


def read_json_lines(path, match=None, count=0, timeout=5.0):
    """The JSON lines of path as dicts, those whose fields equal the dict match only. A
    server writes a line once it has answered, so this waits up to timeout s for at least
    count of them; it returns what it has then. A line still being written is skipped."""
    match = match or {}
    deadline = time.monotonic() + timeout
    out = []
    for _ in range(100000):
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        out = []
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if all(entry.get(k) == v for k, v in match.items()):
                out.append(entry)
        if len(out) >= count or time.monotonic() >= deadline:
            return out
        time.sleep(0.02)
    return out


def delayserver_binary():
    """tests/servers/delayserver.c compiled, once per version of the source and flags, into
    a directory of the system's temporary one; the executable's path."""
    with open(DELAYSERVER_SRC, "rb") as f:
        src = f.read()
    tag = hashlib.sha256(src + " ".join(DELAYSERVER_CFLAGS).encode()).hexdigest()[:16]
    d = os.path.join(tempfile.gettempdir(), f"rf-delayserver-{os.geteuid()}-{tag}")
    exe = os.path.join(d, "delayserver")
    os.makedirs(d, mode=0o700, exist_ok=True)
    if os.stat(d).st_uid != os.geteuid():
        raise RuntimeError(f"{d} belongs to another user")
    if os.access(exe, os.X_OK):
        return exe
    tmp = f"{exe}.{os.getpid()}"
    cc = subprocess.run(["cc"] + DELAYSERVER_CFLAGS + [DELAYSERVER_SRC, "-o", tmp],
                        capture_output=True, text=True, timeout=120)
    if cc.returncode != 0:
        raise RuntimeError(f"cannot compile delayserver.c: {cc.stderr[-3000:]}")
    os.replace(tmp, exe)  # atomic: a run compiling at the same time gets a whole file
    return exe


class DelayServer:
    """tests/servers/delayserver.c (compiled on first use) in a child process: every request
    is answered "hello world\\n" exactly delay_us microseconds after its last byte arrived.

    DelayServer(2000).start(); .port, .host, .url(path), .stop(). spin_us and stamp
    ("kernel" or "read") go to the server's options of those names; cpus="0" runs it under
    `taskset -c 0`. After .stop(), .stats holds the server's closing JSON line (requests,
    answered, stamp_kernel, stamp_read, late_us and timer_late_us percentiles) or None.
    """

    def __init__(self, delay_us, host="127.0.0.1", port=0, spin_us=None, stamp=None,
                 cpus=None, start_timeout=15.0):
        self.delay_us = int(delay_us)
        self.host = host
        self.args = ["--delay-us", str(self.delay_us), "--host", host, "--port", str(int(port))]
        if spin_us is not None:
            self.args += ["--spin-us", str(int(spin_us))]
        if stamp is not None:
            self.args += ["--stamp", stamp]
        self.cpus = cpus
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.stats = None
        self._err = None

    def url(self, path="/"):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def start(self):
        argv = [delayserver_binary()] + self.args
        if self.cpus is not None:
            argv = ["taskset", "-c", str(self.cpus)] + argv
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, start_new_session=True)
        try:
            line = _read_line(self.proc.stdout, self.start_timeout)
            if not line:
                raise RuntimeError(f"delayserver exited with {self.proc.wait(5)}: "
                                   + self._stderr())
            self.port = json.loads(line)["port"]
            wait_port(self.host, self.port, self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _stderr(self):
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")[-4000:]

    def stop(self):
        if self.proc is not None:
            _end_child(self.proc)  # end of stdin: it exits and prints its statistics
            self.proc = None
            lines = [l for l in self._stderr().splitlines() if l.startswith("{")]
            self.stats = json.loads(lines[-1]) if lines else None
        if self._err is not None:
            self._err.close()
            self._err = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def max_overlap_per_host(entries):
    """{Host: the most requests in progress at once} from badserver's count-mode log
    entries (intervals [start, end]; one ending exactly when another starts does not
    overlap it)."""
    events = {}
    for e in entries:
        events.setdefault(e["host"], []).extend([(e["start"], 1), (e["end"], -1)])
    out = {}
    for host, evs in events.items():
        evs.sort()  # at equal times -1 sorts before +1: an end frees its place first
        now = best = 0
        for _, d in evs:
            now += d
            best = max(best, now)
        out[host] = best
    return out


def max_starts_per_window(entries, window=1.0):
    """{Host: the most requests started within any `window` seconds} (starts t with
    first <= t < first + window) from badserver's count-mode log entries."""
    starts = {}
    for e in entries:
        starts.setdefault(e["host"], []).append(e["start"])
    out = {}
    for host, ts in starts.items():
        ts.sort()
        best, lo = 0, 0
        for hi, t in enumerate(ts):
            while t - ts[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        out[host] = best
    return out


class Blackhole:
    """A loopback TCP port that silently drops every SYN, as a firewall would, without
    netfilter: a listener with backlog 0 and one connection parked in its accept queue,
    never accepted. Linux drops a SYN to a listener whose accept queue is full
    (tcp_conn_request: sk_acceptq_is_full), so a connect() to it neither succeeds nor is
    refused; it times out. Other addresses on the same port are unaffected.

    Blackhole("127.0.0.3").start(); .host, .port, .url(path), .queued() (connections in
    the accept queue: 1 while it works), .stop(). Port 0 picks a free one.
    """

    def __init__(self, host="127.0.0.3", port=0):
        self.host = host
        self.requested_port = int(port)
        self.port = None
        self.listener = None
        self.parked = None

    def url(self, path="/", scheme="http"):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def queued(self):
        """The listener's accept queue length: Linux reports it as tcpi_unacked of a
        listening socket's TCP_INFO (offset 24, after eight bytes and four u32s)."""
        info = self.listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return struct.unpack_from("I", info, 24)[0]

    def start(self, timeout=5.0):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.listener.bind((self.host, self.requested_port))
            self.listener.listen(0)
            self.port = self.listener.getsockname()[1]
            self.parked = socket.socket(family, socket.SOCK_STREAM)
            self.parked.settimeout(timeout)
            self.parked.connect((self.host, self.port))
            # The client side is connected once the SYN-ACK is in; the listener queues the
            # connection when the final ACK is processed, a moment later at most.
            deadline = time.monotonic() + timeout
            for _ in range(100000):
                if self.queued() >= 1:
                    return self
                if time.monotonic() > deadline:
                    break
                time.sleep(0.001)
            raise TimeoutError(f"the parked connection never reached {self.host}:{self.port}'s "
                               "accept queue")
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for s in (self.parked, self.listener):
            if s is not None:
                s.close()
        self.parked = self.listener = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def nginx_beside_blackhole(blackhole_host="127.0.0.3", hosts=("127.0.0.1", "::1"), tries=5,
                           **conf):
    """A Blackhole on blackhole_host:P and a started Nginx (the plain configuration, keyword
    arguments as for Nginx) on the same port P of every address in hosts, so that one
    name can resolve to a dead address and live ones: (blackhole, nginx). P is the black
    hole's free port; if nginx cannot have it on hosts, another is tried."""
    last = None
    for _ in range(tries):
        bh = Blackhole(blackhole_host).start()
        try:
            return bh, Nginx(ports=[bh.port], hosts=list(hosts), **conf).start()
        except (RuntimeError, TimeoutError) as e:
            bh.stop()
            last = e
    raise RuntimeError(f"no port free on {blackhole_host} and {list(hosts)}: {last}")


def nginx_tls12_tickets(pki, n_ports=1, **conf):
    """A started HTTPS nginx whose only resumption is by session ticket: TLS 1.2 only,
    ssl_session_tickets on, ssl_session_cache off (a session ID is never resumed). Its
    access log's "reused" field ($ssl_session_reused) is "r" for a resumed session and "."
    for a full handshake; read it with .log_entries(). pki is a TestPKI (server_cert)."""
    tls = dict(cert=pki.server_cert, key=pki.server_key, protocols="TLSv1.2",
               session_tickets=True, session_cache=False)
    return Nginx(n_ports=n_ports, access_log=True, tls=tls, **conf).start()


REDIRECT_CODES = (301, 302, 303, 307, 308)
REDIRECT_CHAIN_MAX = 20
REDIRECT_LOG_FIELDS = ("port", "scheme", "method", "uri", "status", "request_length",
                       "content_length", "transfer_encoding", "body_length", "authorization",
                       "host", "location", "time")


class RedirectWorld(Nginx):
    """An nginx of three origins on one loopback host for redirect tests: "http" and
    "other" (plain HTTP on two ports: two origins) and "https" (the TestPKI's server
    certificate). The same locations on all three; a query string is carried along by
    every redirect, so ?id=X keeps a test's requests apart in the log:

      /code/C            C in 301 302 303 307 308, Location: /target?... (relative)
      /absolute          302, Location: http(s)://HOST:PORT/target?... (this origin, absolute)
      /dir/relative      302, Location: target?... (resolves to /dir/target)
      /dir/sub/up        302, Location: ../target?... (resolves to /dir/target)
      /loop-a, /loop-b   302 to each other, for ever
      /chain/N           302 to /chain/N-1 for N = 1..20; /chain/0 is 200 "chain end\\n"
      /cross-origin/C    C, Location: http://HOST:OTHER/target?... (another origin)
      /cross-scheme/C    C, Location: https://HOST:HTTPS/target?... (http -> https)
      /target, /dir/target  200 "target\\n" after reading the whole request body
      /post              204 after reading the whole request body (answers nothing)
      /                  200 "hello world\\n" for any other path

    The body of /target and /post is read through an internal /_sink/ location (not
    logged), which gives its exact length back as X-Body-Length; the log records it. The
    access log has one JSON line per request, read as dicts by .log_entries(): the fields
    of REDIRECT_LOG_FIELDS ($server_port, $scheme, $request_method, $request_uri, $status,
    $request_length, $content_length, $http_transfer_encoding, the body length,
    $http_authorization, $http_host, the Location sent, $msec); port, status,
    request_length, content_length, body_length as numbers, time as a float, an empty
    field as None. request_length counts a body only where nginx read it (/target, /post);
    for a chunked body it read, nginx reports the length it found as content_length.

    RedirectWorld(pki).start() or redirect_world(pki); .url(path, origin="http"|"other"|
    "https"); .http_port, .other_port, .https_port; .stop().
    """

    ORIGINS = ("http", "other", "https")

    def __init__(self, pki, host="127.0.0.1", start_timeout=15.0):
        super().__init__(n_ports=3, start_timeout=start_timeout, access_log=True,
                         hosts=[host])
        self.pki = pki
        self.host = host
        self.http_port, self.other_port, self.https_port = self.ports

    def url(self, path="/", origin="http"):
        port = self.ports[self.ORIGINS.index(origin)]
        scheme = "https" if origin == "https" else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{port}{path}"

    def log_entries(self, contains=None, count=0, timeout=5.0, **match):
        """The log's entries whose uri contains `contains` and whose fields equal match
        (e.g. method="POST"); waits up to timeout s for count of them."""
        deadline = time.monotonic() + timeout
        out = []
        for _ in range(100000):
            out = [self._entry(e) for e in read_json_lines(self.access_log_path, None, 0, 0)]
            out = [e for e in out if (contains is None or contains in e["uri"])
                   and all(e.get(k) == v for k, v in match.items())]
            if len(out) >= count or time.monotonic() >= deadline:
                return out
            time.sleep(0.02)
        return out

    @staticmethod
    def _entry(raw):
        e = {k: (raw.get(k) or None) for k in REDIRECT_LOG_FIELDS}
        for k in ("port", "status", "request_length", "content_length", "body_length"):
            if e[k] is not None:
                e[k] = int(e[k])
        e["time"] = float(e["time"])
        return e

    def _write_config(self):
        prefix, h = self.prefix, self.host
        hb = f"[{h}]" if ":" in h else h
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(prefix, "tmp", sub), exist_ok=True)
        sink = f"http://{hb}:{self.http_port}/_sink"
        args = "$is_args$args"
        loc = [
            "location / {", "    default_type text/plain;", '    return 200 "hello world\\n";',
            "}",
        ]
        for path, kind in (("/target", "target"), ("/dir/target", "target"), ("/post", "post")):
            loc += [f"location = {path} {{", f"    proxy_pass {sink}/{kind};", "}"]
        loc += [
            "location = /_sink/target {", "    access_log off;",
            "    add_header X-Body-Length $content_length always;",
            "    default_type text/plain;", '    return 200 "target\\n";', "}",
            "location = /_sink/post {", "    access_log off;",
            "    add_header X-Body-Length $content_length always;", "    return 204;", "}",
            f"location = /absolute {{ return 302 $scheme://{hb}:$server_port/target{args}; }}",
            f"location = /dir/relative {{ return 302 target{args}; }}",
            f"location = /dir/sub/up {{ return 302 ../target{args}; }}",
            f"location = /loop-a {{ return 302 /loop-b{args}; }}",
            f"location = /loop-b {{ return 302 /loop-a{args}; }}",
            'location = /chain/0 { default_type text/plain; return 200 "chain end\\n"; }',
        ]
        for n in range(1, REDIRECT_CHAIN_MAX + 1):
            loc.append(f"location = /chain/{n} {{ return 302 /chain/{n - 1}{args}; }}")
        for c in REDIRECT_CODES:
            loc += [
                f"location = /code/{c} {{ return {c} /target{args}; }}",
                f"location = /cross-origin/{c} "
                f"{{ return {c} http://{hb}:{self.other_port}/target{args}; }}",
                f"location = /cross-scheme/{c} "
                f"{{ return {c} https://{hb}:{self.https_port}/target{args}; }}",
            ]
        with open(os.path.join(prefix, "locations.conf"), "w") as f:
            f.write("\n".join(loc) + "\n")

        fields = ", ".join(f'"{k}": "{v}"' for k, v in (
            ("port", "$server_port"), ("scheme", "$scheme"), ("method", "$request_method"),
            ("uri", "$request_uri"), ("status", "$status"),
            ("request_length", "$request_length"), ("content_length", "$content_length"),
            ("transfer_encoding", "$http_transfer_encoding"),
            ("body_length", "$upstream_http_x_body_length"),
            ("authorization", "$http_authorization"), ("host", "$http_host"),
            ("location", "$sent_http_location"), ("time", "$msec")))
        lines = ["user root;"] if os.geteuid() == 0 else []
        lines += [
            "worker_processes 1;", f"pid {prefix}/nginx.pid;",
            f"error_log {prefix}/error.log warn;",
            "events {", "    worker_connections 1024;", "}",
            "http {",
            f"    log_format redirects escape=json '{{{fields}}}';",
            f"    access_log {self.access_log_path} redirects;",
            "    server_tokens off;", "    absolute_redirect off;",
            "    keepalive_timeout 75s;", "    client_max_body_size 64m;",
        ]
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            key = "client_body" if sub == "body" else sub
            lines.append(f"    {key}_temp_path {prefix}/tmp/{sub};")
        for port, tls in ((self.http_port, False), (self.other_port, False),
                          (self.https_port, True)):
            lines += ["    server {", f"        listen {hb}:{port}" + (" ssl;" if tls else ";")]
            if tls:
                lines += [f"        ssl_certificate {self.pki.server_cert};",
                          f"        ssl_certificate_key {self.pki.server_key};"]
            lines += [f"        include {prefix}/locations.conf;", "    }"]
        lines.append("}")
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf


def redirect_world(pki, **kw):
    """A started RedirectWorld(pki, **kw)."""
    return RedirectWorld(pki, **kw).start()


# ----------------------------------------------------------------------- CLI


def _serve_nginx(argv):
    ap = argparse.ArgumentParser(prog="harness.py nginx",
                                 description="Runs a private nginx until SIGTERM or stdin EOF.")
    ap.add_argument("--ports", type=int, default=1, help="number of ports (default 1)")
    ap.add_argument("--port-base", type=int, default=0,
                    help="use PORT_BASE, PORT_BASE+1, ... instead of free ports")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cpu", default=None, help="pin workers to these CPUs: 0 | 0,2 | 0-3")
    ap.add_argument("--connections", type=int, default=4096, help="worker_connections")
    ap.add_argument("--rlimit-nofile", type=int, default=None, help="worker_rlimit_nofile")
    ap.add_argument("--keepalive-requests", default="1000", help="a number or 'unlimited'")
    ap.add_argument("--backlog", type=int, default=4096)
    ap.add_argument("--host", action="append", default=None,
                    help="listen on this loopback address (repeatable; default 127.0.0.1)")
    ap.add_argument("--lifetime", type=float, default=6 * 3600,
                    help="stop after this many seconds at the latest")
    ap.add_argument("--prefix", default=None,
                    help="write nginx.conf and html/ into PREFIX and keep them (default: a "
                    "temporary directory, removed at the end)")
    ap.add_argument("--print-config", action="store_true",
                    help="write the prefix, print its nginx.conf and exit without starting")
    ap.add_argument("--tls", action="store_true",
                    help="HTTPS on every port with a test PKI made in PREFIX/pki (default: a "
                    "temporary directory); its CA certificate is printed as \"ca\"")
    ap.add_argument("--tls-protocols", default=TLS_DEFAULTS["protocols"],
                    help="nginx ssl_protocols (default: %(default)s)")
    a = ap.parse_args(argv)
    ports = list(range(a.port_base, a.port_base + a.ports)) if a.port_base else None
    kr = a.keepalive_requests if a.keepalive_requests == "unlimited" else int(a.keepalive_requests)
    conf = dict(workers=a.workers, cpus=parse_cpus(a.cpu) if a.cpu else None,
                worker_connections=a.connections, rlimit_nofile=a.rlimit_nofile,
                keepalive_requests=kr, backlog=a.backlog, hosts=a.host)
    pki_dir = None
    if a.tls:
        pki_dir = (os.path.join(os.path.abspath(a.prefix), "pki") if a.prefix
                   else tempfile.mkdtemp(prefix="rf-pki-"))
    try:
        pki = TestPKI(pki_dir) if a.tls else None
        if pki:
            conf["tls"] = dict(cert=pki.server_cert, key=pki.server_key,
                               protocols=a.tls_protocols)
        return _run_nginx(a, ports, conf, pki)
    finally:
        if pki_dir and not a.prefix:
            shutil.rmtree(pki_dir, ignore_errors=True)


def _run_nginx(a, ports, conf, pki):
    if a.print_config:
        d = os.path.abspath(a.prefix) if a.prefix else tempfile.mkdtemp(prefix="rf-nginx-")
        try:
            with open(write_nginx_prefix(d, ports or free_ports(a.ports), **conf)) as f:
                sys.stdout.write(f.read())
        finally:
            if not a.prefix:
                shutil.rmtree(d, ignore_errors=True)
        return 0

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin():
        for _ in range(1 << 30):
            try:
                if not os.read(0, 4096):
                    break
            except OSError:
                break
        stop.set()
    threading.Thread(target=watch_stdin, daemon=True).start()

    with Nginx(ports=ports, n_ports=a.ports, prefix=a.prefix, **conf) as ng:
        info = {"ports": ng.ports, "pid": ng.pid, "prefix": ng.prefix}
        if pki:
            info.update(scheme="https", ca=pki.ca_cert)
        print(json.dumps(info), flush=True)
        deadline = time.monotonic() + a.lifetime
        for _ in range(int(a.lifetime) + 2):
            if stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
                break
            if time.monotonic() >= deadline or ng.proc.poll() is not None:
                break
    return 0


def main(argv):
    if len(argv) >= 1 and argv[0] == "nginx":
        return _serve_nginx(argv[1:])
    sys.stderr.write("usage: harness.py nginx [--ports N] [--workers N] [--cpu LIST] ...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# ------------------------------------------------------------------- peak RSS


TIME = "/usr/bin/time"


def run_peak_rss(cmd, **kw):
    """subprocess.run(cmd, **kw) under GNU time; (CompletedProcess, peak RSS in KiB).

    Not wait4() or the program's own getrusage(): at execve Linux keeps the larger of the
    old and new address spaces' peaks, so a program started from this Python process (tens
    of MB by then) would report at least Python's size. GNU time is small: what its child
    reports is the program's own peak."""
    import tempfile as _tempfile
    with _tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
        r = subprocess.run([TIME, "-f", "%M", "-o", f.name] + list(cmd), **kw)
        f.seek(0)
        text = f.read().strip().splitlines()
    return r, int(text[-1]) if text and text[-1].isdigit() else 0
