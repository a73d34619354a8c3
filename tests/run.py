#!/usr/bin/python3
"""ringfetch's one test runner: the unit test binaries of a build, then every test_* function
of tests/integration/test_*.py, one line per test and a last line "N passed, N failed".

    tests/run.py --build build [-k PATTERN] [-v]

Unit binaries (BUILD/tests/test_*) exit 0 to pass, 77 to skip, anything else fails.
Integration tests are functions test_*(ctx) run in file order; a test may set
`test_x.timeout = SECONDS` (or the module TIMEOUT) to change its 60 s limit, and
may raise ctx.Skip("why") (or call ctx.skip("why")) to be counted as skipped.
"""
import argparse
import contextlib
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness  # noqa: E402

UNIT_TIMEOUT = 120
DEFAULT_TIMEOUT = 60
SKIP_CODE = 77


class Skip(Exception):
    """Raised by a test (or by ctx) to mark it skipped."""


class TestTimeout(BaseException):
    """Raised inside a test when its wall-clock limit passes; BaseException so that a
    test's own `except Exception` cannot swallow it."""


class Context:
    """What an integration test receives. Servers start on first use and last the whole run."""

    Skip = Skip

    def __init__(self, build, tmproot):
        self.root = ROOT
        self.build = build
        self._tmproot = tmproot
        self._test = None
        self._nginx = None
        self._bad = None
        self._pki = None
        self._servers = {}
        self._failed_start = {}
        self._refused = None
        self._sanitize = None

    # -- paths

    @property
    def ringfetch(self):
        path = os.path.join(self.build, "ringfetch")
        if not os.access(path, os.X_OK):
            raise AssertionError(f"{os.path.relpath(path, ROOT)} is not built")
        return path

    @property
    def tmpdir(self):
        """A fresh directory per test, removed at the end of the run."""
        d = os.path.join(self._tmproot, self._test or "run")
        os.makedirs(d, exist_ok=True)
        return d

    @property
    def sanitize_flags(self):
        """Compiler flags a program linked against this build's library needs."""
        if self._sanitize is None:
            self._sanitize = []
            try:
                with open(os.path.join(self.build, "libringfetch.a"), "rb") as f:
                    data = f.read()
            except OSError:
                data = b""
            kinds = [k for k, sym in (("address", b"__asan_"), ("undefined", b"__ubsan_"),
                                          ("thread", b"__tsan_"))
                     if sym in data]
            if kinds:
                self._sanitize = ["-fsanitize=" + ",".join(kinds)]
        return list(self._sanitize)

    def compile_c(self, name, source):
        """Build a C program (source text) against this build's libringfetch.a; its path."""
        src = os.path.join(self.tmpdir, name + ".c")
        exe = os.path.join(self.tmpdir, name)
        with open(src, "w") as f:
            f.write(source)
        # The link line docs/api.md gives; a WOLFSSL=system build needs Debian's libwolfssl
        # (the Makefile records the choice), the default one has wolfSSL inside the archive.
        libs = ["-luring", "-lcares", "-lidn2", "-lpthread", "-lm"]
        with open(os.path.join(self.build, "wolfssl.choice")) as f:
            if f.read().split()[0] == "system":
                libs.append("-lwolfssl")
        cc = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", src,
                             "-I" + os.path.join(self.root, "include"),
                             os.path.join(self.build, "libringfetch.a")] + libs +
                            ["-o", exe] + self.sanitize_flags,
                            capture_output=True, text=True, timeout=60)
        assert cc.returncode == 0, cc.stderr
        return exe

    # -- servers

    def _lazy(self, name, make):
        if name in self._failed_start:
            raise RuntimeError(f"{name} failed to start earlier in this run: "
                               f"{self._failed_start[name]}")
        try:
            return make()
        except Exception as e:
            self._failed_start[name] = f"{type(e).__name__}: {e}"
            raise

    @property
    def nginx(self):
        if self._nginx is None:
            self._nginx = self._lazy("nginx", lambda: harness.Nginx(n_ports=4).start())
        return self._nginx

    @property
    def bad(self):
        if self._bad is None:
            log = os.path.join(self._tmproot, "badserver.log")
            self._bad = self._lazy("badserver", lambda: harness.BadServer(log=log).start())
        return self._bad

    @property
    def pki(self):
        """harness.TestPKI made once per run: a test CA and the certificates it signed."""
        if self._pki is None:
            self._pki = self._lazy("pki", lambda: harness.TestPKI(
                os.path.join(self._tmproot, "pki")))
        return self._pki

    def server(self, name, make):
        """A server for the whole run: make() (which returns it started, with a .stop())
        runs on the first call for name; later calls return the same one."""
        if name not in self._servers:
            self._servers[name] = self._lazy(name, make)
        return self._servers[name]

    def refused_port(self):
        """A loopback port bound for the whole run but never listening: connect is refused."""
        if self._refused is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            self._refused = s
        return self._refused.getsockname()[1]

    # -- helpers

    def fetch(self, args, input_text=None, timeout=60):
        """Runs `ringfetch fetch ARGS` (or `ringfetch ARGS` when ARGS starts with a
        subcommand); returns (returncode, rows, stderr)."""
        args = list(args)
        if not args or args[0] not in ("fetch", "bench", "merge"):
            args = ["fetch"] + args
        return harness.run_ringfetch(self.ringfetch, args, input_text, timeout)

    def bench(self, args, timeout=60):
        """Runs `ringfetch bench ARGS`; returns (returncode, stdout, stderr)."""
        r = subprocess.run([self.ringfetch, "bench"] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def bench_json(self, args, timeout=60):
        """`ringfetch bench ARGS --json`, which must succeed; the report."""
        rc, out, err = self.bench(list(args) + ["--json"], timeout)
        assert rc == 0, (rc, out, err)
        return json.loads(out)

    def skip(self, why):
        raise Skip(why)

    def close(self):
        for srv in [self._bad, self._nginx] + list(self._servers.values()):
            if srv is not None:
                try:
                    srv.stop()
                except Exception as e:  # teardown must not hide the summary
                    print(f"warning: stopping a server: {e}", file=sys.stderr)
        self._bad = self._nginx = None
        self._servers = {}
        if self._refused is not None:
            self._refused.close()
            self._refused = None


# ---------------------------------------------------------------------- output


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def report(self, verdict, name, detail=""):
        if verdict == "PASS":
            self.passed += 1
        elif verdict == "FAIL":
            self.failed += 1
        else:
            self.skipped += 1
        print(f"{verdict} {name}", flush=True)
        if detail:
            print(indent(detail), flush=True)

    def summary(self):
        """The last line of the run; skips are counted on the line before it."""
        line = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            line = f"{self.skipped} skipped\n" + line
        return line


def indent(text, limit=200):
    lines = text.rstrip("\n").splitlines()
    if len(lines) > limit:
        lines = [f"... ({len(lines) - limit} lines cut)"] + lines[-limit:]
    return "\n".join("    " + l for l in lines)


def rel(path):
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def describe_failure(exc, test_file, verbose):
    """file:line of the failing statement in the test file, the exception and its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    here = [f for f in frames if os.path.abspath(f.filename) == test_file]
    where = here[-1] if here else (frames[-1] if frames else None)
    out = []
    if where is not None:
        out.append(f"{rel(where.filename)}:{where.lineno}: {(where.line or '').strip()}")
        inner = frames[-1]
        if inner is not where and os.path.abspath(inner.filename) != os.path.abspath(__file__):
            out.append(f"raised at {rel(inner.filename)}:{inner.lineno} in {inner.name}")
    msg = str(exc)
    if len(msg) > 3000:
        msg = msg[:3000] + " ..."
    out.append(f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__)
    if verbose:
        out.append("".join(traceback.format_exception(exc)).rstrip())
    return "\n".join(out)


# ------------------------------------------------------------------ unit tests


def unit_binaries(build):
    d = os.path.join(build, "tests")
    if not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if name.startswith("test_") and os.path.isfile(path) and os.access(path, os.X_OK):
            out.append(path)
    return out


def run_unit(path, tally):
    name = "unit/" + os.path.basename(path)
    proc = subprocess.Popen([path], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=UNIT_TIMEOUT)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, _ = proc.communicate()
        code = None
    except BaseException:
        kill_group(proc)
        proc.wait()
        raise
    text = out.decode("utf-8", "replace")
    if code == 0:
        tally.report("PASS", name)
    elif code == SKIP_CODE:
        last = text.strip().splitlines()[-1:] or [""]
        tally.report("SKIP", name, last[0])
    elif code is None:
        tally.report("FAIL", name, text + f"\ntimed out after {UNIT_TIMEOUT} s")
    else:
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        tally.report("FAIL", name, text + "\n" + how)


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ----------------------------------------------------------- integration tests


def load_module(path):
    name = "integration_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_functions(mod):
    found = [(obj.__code__.co_firstlineno, name, obj) for name, obj in vars(mod).items()
             if name.startswith("test_") and callable(obj)
             and getattr(obj, "__module__", None) == mod.__name__
             and hasattr(obj, "__code__")]
    return [(name, obj) for _, name, obj in sorted(found, key=lambda t: t[0])]


def on_alarm(signum, frame):
    raise TestTimeout(f"timed out after {on_alarm.limit} s")


def run_integration(ctx, name, fn, path, timeout, tally, verbose):
    ctx._test = name.split("::")[-1]
    wants_ctx = fn.__code__.co_argcount > 0
    captured = io.StringIO()
    on_alarm.limit = timeout
    error = None
    try:
        with contextlib.redirect_stdout(captured):
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                fn(ctx) if wants_ctx else fn()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except Skip as e:
        tally.report("SKIP", name, str(e))
        return
    except (Exception, TestTimeout) as e:
        error = e
    if error is None:
        tally.report("PASS", name)
        if verbose and captured.getvalue().strip():  # what a test measured, when asked
            print(captured.getvalue().rstrip(), flush=True)
        return
    detail = describe_failure(error, path, verbose)
    out = captured.getvalue()
    if out.strip():
        detail += "\noutput:\n" + out
    tally.report("FAIL", name, detail)


def selected(name, patterns):
    return not patterns or any(p in name for p in patterns)


def main():
    ap = argparse.ArgumentParser(description="Runs ringfetch's unit and integration tests.")
    ap.add_argument("--build", required=True, help="build directory (holds ringfetch, tests/)")
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="run only tests whose name contains PATTERN (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="full tracebacks, and what passing tests print")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                    help="default integration test limit in seconds (60)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.chdir(ROOT)

    tally = Tally()
    tmproot = tempfile.mkdtemp(prefix="rf-tests-")
    ctx = Context(build, tmproot)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    interrupted = False
    try:
        for path in unit_binaries(build):
            if selected("unit/" + os.path.basename(path), args.patterns):
                run_unit(path, tally)

        idir = os.path.join(ROOT, "tests", "integration")
        files = sorted(f for f in os.listdir(idir) if f.startswith("test_") and f.endswith(".py"))
        sys.path.insert(0, idir)
        for fname in files:
            path = os.path.join(idir, fname)
            stem = fname[:-3]
            try:
                mod = load_module(path)
            except Exception as e:
                if selected(stem, args.patterns):
                    tally.report("FAIL", stem, describe_failure(e, path, args.verbose))
                continue
            for fn_name, fn in test_functions(mod):
                name = f"{stem}::{fn_name}"
                if not selected(name, args.patterns):
                    continue
                limit = getattr(fn, "timeout", getattr(mod, "TIMEOUT", args.timeout))
                run_integration(ctx, name, fn, path, float(limit), tally, args.verbose)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted", flush=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        ctx.close()
        shutil.rmtree(tmproot, ignore_errors=True)
    if interrupted:
        tally.failed += 1
    print(tally.summary(), flush=True)
    sys.stderr.flush()
    # Skip interpreter teardown: a thread a test left behind must not delay or print.
    os._exit(0 if tally.failed == 0 else 1)


if __name__ == "__main__":
    main()
