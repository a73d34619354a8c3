"""make install and uninstall, ringfetch.pc, the man pages, and libringfetch used the way a
program outside this tree uses it: only the installed files, through pkg-config, shared and
static, next to libraries with names that are also inside it (OpenSSL, Debian's wolfSSL, a
url_parse() of the program's own).

The examples of docs/api.md are built from the page itself: every ```c block right after a
line `<!-- example: NAME -->` gets a test test_example_NAME, which runs it as the `$ ./NAME`
line of its opening comment says and compares its output with the lines after that one."""
import os
import re
import shutil
import subprocess
import tempfile

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API_MD = os.path.join(ROOT, "docs", "api.md")
DOC_SERVER = "127.0.0.1:8080"  # stands for the test nginx in the examples' transcripts
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
# A make run from inside `make test` must not take the outer make's jobserver.
MAKE_ENV = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


def wolfssl_choice(ctx):
    """The build's WOLFSSL= (source or system), as the Makefile recorded it."""
    with open(os.path.join(ctx.build, "wolfssl.choice")) as f:
        return f.read().split()[0]


def system_wolfssl(ctx):
    """Whether the build links Debian's libwolfssl (make WOLFSSL=system)."""
    return wolfssl_choice(ctx) == "system"


def header_version():
    text = open(os.path.join(ROOT, "include", "ringfetch.h")).read()
    return [int(re.search(rf"^#define RINGFETCH_VERSION_{p} (\d+)$", text, re.M).group(1))
            for p in ("MAJOR", "MINOR", "PATCH")]


def api_names(header):
    """The functions include/ringfetch.h declares with RF_API, sorted."""
    return sorted(re.findall(r"^RF_API [^(]*?\b(rf_\w+)\(", open(header).read(), re.M))


def make(ctx, *args):
    """make ARGS for this run's build directory (and its wolfSSL choice); the output."""
    r = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "B=" + ctx.build,
                        "WOLFSSL=" + wolfssl_choice(ctx)] + list(args),
                       capture_output=True, text=True, env=MAKE_ENV, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def files_under(top):
    """{path relative to top: ("f", mode) or ("l", link target)} of every file and link."""
    out = {}
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, top)
            out[rel] = ("l", os.readlink(p)) if os.path.islink(p) else \
                ("f", oct(os.stat(p).st_mode & 0o777))
    return out


def needed(exe):
    """The DT_NEEDED libraries of a program ([] for a static one)."""
    r = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", r.stdout)


class Installed:
    """`make install PREFIX=<tmp>/usr` (no DESTDIR, so that ringfetch.pc holds the real
    paths), once per run; stop() removes it. Programs are built in <tmp>/work, outside the
    tree, with only what pkg-config says."""

    def __init__(self, ctx):
        self.system = system_wolfssl(ctx)
        self.top = tempfile.mkdtemp(prefix="rf-install-")
        self.prefix = os.path.join(self.top, "usr")
        self.libdir = os.path.join(self.prefix, "lib")
        self.work = os.path.join(self.top, "work")
        os.makedirs(self.work)
        # LDCONFIG=: leaves the system's loader cache alone.
        make(ctx, "install", "PREFIX=" + self.prefix, "LDCONFIG=:")
        self.env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.libdir, "pkgconfig"))
        self.sanitize = ctx.sanitize_flags

    def pkg_config(self, *args):
        r = subprocess.run(["pkg-config"] + list(args) + ["ringfetch"], capture_output=True,
                           text=True, env=self.env, cwd=self.work, check=True)
        return r.stdout.split()

    def link_flags(self, mode):
        """shared: libringfetch.so; static: libringfetch.a, the rest shared;
        all-static: cc -static, everything from its .a."""
        if mode == "shared":
            return self.pkg_config("--cflags", "--libs")
        flags = self.pkg_config("--static", "--cflags", "--libs")
        if mode == "static":
            return ["-l:libringfetch.a" if f == "-lringfetch" else f for f in flags]
        assert mode == "all-static", mode
        return ["-static"] + flags

    def build(self, name, source, mode, before=(), after=()):
        """Compiles source as <work>/NAME-MODE: cc SOURCE BEFORE ringfetch's flags AFTER.
        Returns its path."""
        src = os.path.join(self.work, name + ".c")
        exe = os.path.join(self.work, f"{name}-{mode}")
        with open(src, "w") as f:
            f.write(source)
        cmd = ["cc"] + CFLAGS + [src] + list(before) + self.link_flags(mode) + list(after) + \
            ["-o", exe] + self.sanitize
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=self.work, timeout=120)
        assert r.returncode == 0, " ".join(cmd) + "\n" + r.stderr
        if mode == "all-static":
            assert static_link_warnings(r.stderr) == \
                (["libcares.a", "libwolfssl.a"] if self.system else ["libcares.a"]), r.stderr
        else:
            assert r.stderr == "", r.stderr
        if mode == "shared":
            assert "libringfetch.so.0" in needed(exe), needed(exe)
        else:
            assert not any(n.startswith("libringfetch") for n in needed(exe)), needed(exe)
        return exe

    def run(self, exe, args, timeout=30):
        """Runs a program built here, finding libringfetch.so.0 in the installed lib dir."""
        return subprocess.run([exe] + list(args), capture_output=True, text=True,
                              cwd=self.work, env=dict(os.environ, LD_LIBRARY_PATH=self.libdir),
                              timeout=timeout)

    def stop(self):
        shutil.rmtree(self.top, ignore_errors=True)


def installed(ctx):
    return ctx.server("install", lambda: Installed(ctx))


def static_modes(inst):
    """A sanitizer runtime cannot be linked with -static."""
    return ["static"] if inst.sanitize else ["static", "all-static"]


def static_link_warnings(stderr):
    """cc -static warns about the glibc functions that need its shared NSS modules at run
    time (getservbyname, getaddrinfo, ...); the libraries that call them, sorted. Any other
    line is returned as it is."""
    out = set()
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"/(lib\w+\.a)\(.*\): in function", line)
        if m and i + 1 < len(lines) and \
                re.search(r"warning: Using '\w+' in statically linked", lines[i + 1]):
            out.add(m.group(1))
        elif not re.search(r"warning: Using '\w+' in statically linked", line):
            out.add(line)
    return sorted(out)


# ------------------------------------------------------------------ install and uninstall


def test_install_and_uninstall_with_destdir(ctx):
    """make install DESTDIR=D PREFIX=/usr puts exactly these files under D/usr, without
    rebuilding anything; make uninstall with the same variables leaves no file."""
    major, minor, patch = header_version()
    real = f"libringfetch.so.{major}.{minor}.{patch}"
    dest = os.path.join(ctx.tmpdir, "dest")
    out = make(ctx, "install", "DESTDIR=" + dest, "PREFIX=/usr")
    assert out == f"  INSTALL {dest}/usr\n", out  # nothing compiled or linked again
    assert files_under(dest) == {
        "usr/bin/ringfetch": ("f", "0o755"),
        "usr/include/ringfetch.h": ("f", "0o644"),
        "usr/lib/libringfetch.a": ("f", "0o644"),
        f"usr/lib/{real}": ("f", "0o755"),
        f"usr/lib/libringfetch.so.{major}": ("l", real),
        "usr/lib/libringfetch.so": ("l", f"libringfetch.so.{major}"),
        "usr/lib/pkgconfig/ringfetch.pc": ("f", "0o644"),
        "usr/share/man/man1/ringfetch.1": ("f", "0o644"),
        "usr/share/man/man3/libringfetch.3": ("f", "0o644"),
    }, files_under(dest)
    r = subprocess.run(["readelf", "-d", os.path.join(dest, "usr/lib", real)],
                       capture_output=True, text=True, check=True)
    assert re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", r.stdout) == \
        [f"libringfetch.so.{major}"], r.stdout
    with open(os.path.join(dest, "usr/include/ringfetch.h"), "rb") as a, \
            open(os.path.join(ROOT, "include/ringfetch.h"), "rb") as b:
        assert a.read() == b.read()
    system = system_wolfssl(ctx)
    pc = open(os.path.join(dest, "usr/lib/pkgconfig/ringfetch.pc")).read().splitlines()
    assert pc == [
        "prefix=/usr",
        "exec_prefix=${prefix}",
        "libdir=${prefix}/lib",
        "includedir=${prefix}/include",
        "",
        "Name: ringfetch",
        "Description: io_uring HTTP/1.1 fetch engine (http and https)",
        f"Version: {major}.{minor}.{patch}",
        "Requires.private: liburing libcares libidn2",
        "Cflags: -I${includedir}",
        "Libs: -L${libdir} -lringfetch",
        "Libs.private: " + ("-lwolfssl " if system else "") + "-lpthread -lm",
    ], pc

    out = make(ctx, "uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
    assert out == f"  REMOVE  {dest}/usr\n", out
    assert files_under(dest) == {}, files_under(dest)


def test_pkg_config_output(ctx):
    inst = installed(ctx)
    major, minor, patch = header_version()
    inc, lib = os.path.join(inst.prefix, "include"), inst.libdir
    assert inst.pkg_config("--modversion") == [f"{major}.{minor}.{patch}"]
    assert inst.pkg_config("--cflags", "--libs") == [f"-I{inc}", f"-L{lib}", "-lringfetch"]
    deps = subprocess.run(["pkg-config", "--static", "--libs", "liburing", "libcares", "libidn2"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert inst.pkg_config("--static", "--libs") == [f"-L{lib}", "-lringfetch"] + \
        (["-lwolfssl"] if inst.system else []) + ["-lpthread", "-lm"] + deps


# --------------------------------------------------------------- what the archive exports


def test_static_archive_exports_only_the_api(ctx):
    """The installed libringfetch.a defines exactly the RF_API functions of the header as
    globals, the same the shared library exports; what it needs from libc, liburing,
    c-ares, pthread and libm stays undefined for the final link."""
    inst = installed(ctx)
    archive = os.path.join(inst.libdir, "libringfetch.a")
    header = os.path.join(inst.prefix, "include", "ringfetch.h")
    api = api_names(header)
    assert len(api) == open(header).read().count("\nRF_API "), api

    r = subprocess.run(["nm", "-g", "--defined-only", archive], capture_output=True,
                       text=True, check=True)
    defined = sorted(l.split()[2] for l in r.stdout.splitlines() if len(l.split()) == 3)
    assert defined == api, sorted(set(defined) - set(api))[:50]
    r = subprocess.run(["nm", "-D", "--defined-only",
                        os.path.join(inst.libdir, "libringfetch.so.0")],
                       capture_output=True, text=True, check=True)
    assert sorted(l.split()[2] for l in r.stdout.splitlines()) == api, r.stdout

    r = subprocess.run(["nm", "-u", archive], capture_output=True, text=True, check=True)
    undefined = {l.split()[-1] for l in r.stdout.splitlines() if l.strip().startswith("U ")}
    wanted = ["malloc", "io_uring_queue_init_params", "ares_init_options", "pthread_create"]
    # The wolfSSL inside needs libm; with Debian's, ringfetch calls it.
    wanted += ["wolfSSL_new"] if inst.system else ["log", "pow"]
    for sym in wanted:
        assert sym in undefined, sym
    assert not [s for s in undefined if s.startswith(("url_", "conn_", "llhttp_"))], undefined


# ------------------------------------------------------------ docs/api.md's examples


def doc_examples():
    """{NAME: (source, line)} of every ```c block right after `<!-- example: NAME -->`."""
    lines = open(API_MD).read().split("\n")
    out = {}
    for i, line in enumerate(lines):
        m = re.fullmatch(r"<!-- example: ([a-z0-9_]+) -->", line.strip())
        if not m:
            continue
        assert lines[i + 1] == "```c", f"docs/api.md:{i + 2}: no ```c block after {line}"
        end = lines.index("```", i + 2)
        assert m.group(1) not in out, f"docs/api.md:{i + 1}: a second example {m.group(1)}"
        out[m.group(1)] = ("\n".join(lines[i + 2:end]) + "\n", i + 3)
    return out


def transcript(name, source):
    """(arguments, expected output lines or None) from the opening comment's `$ ./NAME`
    line and the lines after it, up to a blank one or the comment's end."""
    m = re.match(r"\s*/\*(.*?)\*/", source, re.S)
    text = [re.sub(r"^\s*\*? ?", "", l).strip() for l in (m.group(1) if m else "").split("\n")]
    for i, line in enumerate(text):
        if line.startswith("$ "):
            cmd = line[2:].split()
            assert cmd[0] == "./" + name, f"example {name} runs {cmd[0]}"
            expect = []
            for l in text[i + 1:]:
                if not l:
                    break
                expect.append(l)
            return cmd[1:], expect or None
    return [], None


def run_example(ctx, name):
    source, line = doc_examples()[name]
    args, expect = transcript(name, source)
    inst = installed(ctx)
    here = f"127.0.0.1:{ctx.nginx.ports[0]}"
    args = [a.replace(DOC_SERVER, here) for a in args]
    for mode in ["shared"] + static_modes(inst):
        exe = inst.build(name, source, mode)
        if mode == "shared":
            r = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True,
                               env=dict(os.environ, LD_LIBRARY_PATH=inst.libdir))
            resolved = re.findall(r"^\s*libringfetch\.so\.0 => (\S+)", r.stdout, re.M)
            assert resolved == [os.path.join(inst.libdir, "libringfetch.so.0")], r.stdout
        r = inst.run(exe, args)
        where = f"docs/api.md:{line}: example {name} ({mode})"
        assert r.returncode == 0, (where, r.returncode, r.stdout, r.stderr)
        if expect is None:
            continue
        got = r.stdout.splitlines()
        ok = len(got) == len(expect) and all(
            re.fullmatch(".*".join(map(re.escape, e.replace(DOC_SERVER, here).split("..."))),
                         g) for e, g in zip(expect, got))
        assert ok, f"{where}: printed\n{r.stdout}expected\n" + "\n".join(expect)


def example_test(name):
    def test(ctx):
        run_example(ctx, name)
    test.__name__ = test.__qualname__ = "test_example_" + name
    test.timeout = 120
    return test


for _name in doc_examples():
    globals()["test_example_" + _name] = example_test(_name)


def test_docs_have_the_fetch_example():
    """The page keeps at least its first example (a renamed marker would drop its test)."""
    examples = doc_examples()
    assert "fetch" in examples, sorted(examples)
    args, expect = transcript("fetch", examples["fetch"][0])
    assert len(args) == 4 and expect[-1] == "2 of 4 ok", (args, expect)


# ----------------------------------------------------- next to same-named libraries

FETCH_ONE = r"""
static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    printf("fetch: %d %s\n", r->status, rf_strerror(r->error));
}

/* url through a new engine, its row printed: 0 when the run ended well. */
static int fetch_one(const char *url)
{
    rf_config cfg;
    rf_engine *eng;
    rf_error err;

    rf_config_init(&cfg);
    cfg.on_result = on_result;
    if (rf_engine_create(&eng, &cfg) != RF_OK)
        return 1;
    rf_request req = {.url = url};
    rf_submit(eng, &req);
    err = rf_run(eng);
    rf_engine_destroy(eng);
    return err == RF_OK ? 0 : 1;
}
"""


CLASH_PROGRAM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <openssl/ssl.h>
#include <ringfetch.h>
""" + FETCH_ONE + r"""
/* The engine has a url_parse() of its own, with other arguments and meaning. */
int url_parse(const char *s);
int url_parse(const char *s)
{
    return 1000 + (int)strlen(s);
}

static const char *library_of(void *fn)
{
    Dl_info info;

    if (!dladdr(fn, &info) || !info.dli_fname)
        return "?";
    return strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1 : info.dli_fname;
}

int main(int argc, char **argv)
{
    SSL_SESSION *sess = SSL_SESSION_new();
    unsigned int len = 0;
    const unsigned char *id;
    int set;

    printf("url_parse: %d\n", url_parse("http://x/"));
    set = SSL_SESSION_set1_id_context(sess, (const unsigned char *)"ringfetch", 9);
    id = SSL_SESSION_get0_id_context(sess, &len);
    printf("SSL_SESSION_set1_id_context: %d %.*s %s\n", set, (int)len, (const char *)id,
           library_of((void *)SSL_SESSION_set1_id_context));
    SSL_SESSION_free(sess);
    return argc == 2 ? fetch_one(argv[1]) : 1;
}
"""


def test_own_url_parse_and_openssl_next_to_libringfetch(ctx):
    """The program's url_parse() and OpenSSL's SSL_SESSION_set1_id_context() are the ones
    called, with libringfetch static or shared, before or after -lssl -lcrypto, and the
    fetch through ringfetch still works."""
    inst = installed(ctx)
    url = ctx.nginx.url("/")
    ssl = ["-lssl", "-lcrypto"]
    for mode in ("shared", "static"):
        for order in ("ringfetch first", "openssl first"):
            if inst.system and mode == "static" and order == "ringfetch first":
                continue  # Debian's libwolfssl.so, then before -lssl, has OpenSSL's names too
            before, after = (ssl, []) if order == "openssl first" else ([], ssl)
            exe = inst.build(f"clash-{order.split()[0]}", CLASH_PROGRAM, mode, before, after)
            r = inst.run(exe, [url])
            assert (r.returncode, r.stderr) == (0, ""), (mode, order, r.returncode, r.stderr)
            assert r.stdout.splitlines() == [
                "url_parse: 1009",
                "SSL_SESSION_set1_id_context: 1 ringfetch libssl.so.3",
                "fetch: 200 ok",
            ], (mode, order, r.stdout)


LLHTTP_PROGRAM = r"""
#include <stdio.h>
#include <ringfetch.h>
""" + FETCH_ONE + r"""
/* The program's own llhttp, another version than the one inside libringfetch: its entry
 * points have the same names and do something else. The engine must keep its own. */
static int calls;

void llhttp_settings_init(void *settings);
void llhttp_init(void *parser, int type, const void *settings);
int llhttp_execute(void *parser, const char *data, unsigned long len);

void llhttp_settings_init(void *settings) { (void)settings; calls++; }
void llhttp_init(void *parser, int type, const void *settings)
{
    (void)parser, (void)type, (void)settings;
    calls++;
}
int llhttp_execute(void *parser, const char *data, unsigned long len)
{
    (void)parser, (void)data, (void)len;
    calls++;
    return 77;
}

int main(int argc, char **argv)
{
    char parser[512], settings[512];
    int ret;

    llhttp_settings_init(settings);
    llhttp_init(parser, 0, settings);
    printf("llhttp_execute: %d\n", llhttp_execute(parser, "x", 1));
    ret = argc == 2 ? fetch_one(argv[1]) : 1;
    printf("calls of the program's llhttp: %d\n", calls);
    return ret;
}
"""


def test_own_llhttp_next_to_libringfetch(ctx):
    """A program with its own llhttp (same function names, other behaviour) links
    libringfetch static or shared: no clash at link time, the program's calls reach its
    llhttp, and the engine parses with its own (the fetch is 200, the program's llhttp is
    called only by the program)."""
    inst = installed(ctx)
    url = ctx.nginx.url("/")
    for mode in ["shared"] + static_modes(inst):
        exe = inst.build("own-llhttp", LLHTTP_PROGRAM, mode)
        r = inst.run(exe, [url])
        assert (r.returncode, r.stderr) == (0, ""), (mode, r.returncode, r.stderr)
        assert r.stdout.splitlines() == ["llhttp_execute: 77", "fetch: 200 ok",
                                         "calls of the program's llhttp: 3"], (mode, r.stdout)


WOLFSSL_PROGRAM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <ringfetch.h>

static void on_result(void *userp, const rf_result *r)
{
    (void)userp;
    printf("fetch: %d %s %s\n", r->status, rf_strerror(r->error),
           r->tls_version ? "tls" : "plain");
}

int main(int argc, char **argv)
{
    Dl_info info;
    rf_config cfg;
    rf_engine *eng;
    rf_error err;

    printf("wolfSSL_Init: %d\n", wolfSSL_Init());
    if (!dladdr((void *)wolfSSL_lib_version, &info))
        return 1;
    printf("wolfSSL_lib_version: %s %s\n", wolfSSL_lib_version(), info.dli_fname);

    rf_config_init(&cfg);
    cfg.on_result = on_result;
    cfg.ca_file = argv[1];
    if (argc < 3 || rf_engine_create(&eng, &cfg) != RF_OK)
        return 1;
    for (int i = 2; i < argc; i++) {
        rf_request req = {.url = argv[i]};

        rf_submit(eng, &req);
    }
    err = rf_run(eng);
    rf_engine_destroy(eng);
    printf("wolfSSL_Cleanup: %d\n", wolfSSL_Cleanup());
    return err == RF_OK ? 0 : 1;
}
"""


def test_debian_wolfssl_next_to_static_libringfetch(ctx):
    """A program of Debian's libwolfssl links static libringfetch (which has a wolfSSL of
    its own inside) in either order: its wolfSSL calls go to libwolfssl.so, and ringfetch
    still fetches http and https."""
    inst = installed(ctx)
    pki = ctx.pki
    https = ctx.server("nginx-https-install", lambda: harness.Nginx(
        n_ports=1, tls=dict(cert=pki.server_cert, key=pki.server_key)).start())
    version = subprocess.run(["pkg-config", "--modversion", "wolfssl"], capture_output=True,
                             text=True, check=True).stdout.strip()
    for order in ("ringfetch first", "wolfssl first"):
        before, after = (["-lwolfssl"], []) if order == "wolfssl first" else ([], ["-lwolfssl"])
        exe = inst.build(f"wolfssl-{order.split()[0]}", WOLFSSL_PROGRAM, "static",
                            before, after)
        r = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True)
        libwolfssl = re.findall(r"^\s*libwolfssl\.so\S* => (\S+)", r.stdout, re.M)
        assert len(libwolfssl) == 1, r.stdout
        r = inst.run(exe, [pki.ca_cert, ctx.nginx.url("/"), https.url("/")])
        assert (r.returncode, r.stderr) == (0, ""), (order, r.returncode, r.stderr)
        assert r.stdout.splitlines() == [
            "wolfSSL_Init: 1",
            f"wolfSSL_lib_version: {version} {libwolfssl[0]}",
            "fetch: 200 ok plain",
            "fetch: 200 ok tls",
            "wolfSSL_Cleanup: 1",
        ], (order, r.stdout)


# ------------------------------------------------------------------------- man pages

MAN_PAGES = {
    "man1/ringfetch.1": "ringfetch - fetch many HTTP and HTTPS URLs at once, or load-test one, "
                        "on io_uring",
    "man3/libringfetch.3": "libringfetch - many HTTP/1.1 requests at once on io_uring, results "
                           "in submission order",
}


def test_man_pages_render_without_warnings(ctx):
    """man -l renders each installed page without a warning (man --warnings passes groff's
    default ones, groff -ww turns on all); the NAME line is what whatis will show."""
    inst = installed(ctx)
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    for rel, whatis in MAN_PAGES.items():
        path = os.path.join(inst.prefix, "share", "man", rel)
        r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True,
                           text=True, env=env, timeout=30)
        assert (r.returncode, r.stderr) == (0, ""), (rel, r.returncode, r.stderr)
        text = subprocess.run(["col", "-b"], input=r.stdout, capture_output=True, text=True,
                              check=True).stdout
        title = os.path.basename(rel).replace(".", "(").upper() + ")"
        assert text.split()[0] == title, (rel, text[:200])
        r = subprocess.run(["groff", "-ww", "-z", "-man", "-Tutf8", path], capture_output=True,
                           text=True, timeout=30)
        assert (r.returncode, r.stderr) == (0, ""), (rel, r.stderr)
        r = subprocess.run(["lexgrog", path], capture_output=True, text=True, timeout=30)
        assert r.stdout == f'{path}: "{whatis}"\n', r.stdout


def test_man_page_example(ctx):
    """The EXAMPLE of libringfetch(3) builds against the installed library and fetches."""
    inst = installed(ctx)
    page = open(os.path.join(ROOT, "docs", "man", "libringfetch.3")).read()
    roff = page.split("\n.EX\n", 1)[1].split("\n.EE\n", 1)[0]
    source = roff.replace("\\e", "\\").replace("\\-", "-") + "\n"
    exe = inst.build("man-example", source, "shared")
    url = ctx.nginx.url("/status/404")
    r = inst.run(exe, [ctx.nginx.url("/"), url])
    assert (r.returncode, r.stderr) == (0, ""), (r.returncode, r.stderr)
    assert r.stdout == f"{ctx.nginx.url('/')} 200 ok\n{url} 404 ok\n", r.stdout
