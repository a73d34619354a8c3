"""ringfetch fetch's rows: UTF-8 in JSON and CSV (valid text as it is, each invalid byte
U+FFFD, control characters escaped), the new fields and columns, CSV's body column, bare-LF
answers, -o FILE written whole rows at a time and fsynced every N rows, and the progress
line never glued to a row on a shared terminal."""
import csv
import io
import json
import os
import pty
import re
import shutil
import subprocess
import threading
import time

JSONL_KEYS = ["index", "line", "url", "status", "error", "bytes", "connect_ms", "ttfb_ms",
              "total_ms", "ip", "addresses_tried", "attempts", "redirects"]
CSV_HEADER = ("index,url,status,error,bytes,connect_ms,ttfb_ms,total_ms,ip,location,"
              "content_type,tls_version,tls_ms,tls_resumed,error_detail,line,addresses_tried,"
              "attempts,redirects,final_url,chain")


def run(ctx, args, stdin=None):
    """ringfetch fetch ARGS; (returncode, stdout bytes, stderr text)."""
    r = subprocess.run([ctx.ringfetch, "fetch"] + args, input=stdin, capture_output=True,
                       timeout=60)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


def csv_rows(data):
    """The CSV output (strict UTF-8) as dicts by header."""
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def test_utf8_kept_invalid_bytes_replaced(ctx):
    """A UTF-8 Location is "/café" in JSON and CSV; a Latin-1 one, and a Latin-1 byte in an
    input line, come out with U+FFFD for the bad byte. Every output is valid UTF-8."""
    port = ctx.nginx.ports[0]
    lines = [ctx.bad.url("utf8", "/redirect").encode(), ctx.bad.url("utf8", "/latin1").encode(),
             b"http://127.0.0.1:%d/caf\xe9?latin1" % port]
    path = os.path.join(ctx.tmpdir, "urls.txt")
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    rc, out, err = run(ctx, ["-q", "-i", path])
    assert rc == 0, err
    assert b'"location":"/caf\xc3\xa9"' in out, out  # as it is, not \u00c3\u00a9
    rows = [json.loads(l) for l in out.decode("utf-8").splitlines()]
    assert [(r["status"], r.get("location")) for r in rows] == [
        (301, "/café"), (301, "/caf\ufffd"), (200, None)], rows
    assert rows[2]["url"] == f"http://127.0.0.1:{port}/caf\ufffd?latin1", rows[2]
    rc, out, err = run(ctx, ["-q", "--format", "csv", "-i", path])
    assert rc == 0, err
    rows = csv_rows(out)
    assert [(r["status"], r["location"]) for r in rows] == [
        ("301", "/café"), ("301", "/caf\ufffd"), ("200", "")], rows
    assert rows[2]["url"] == f"http://127.0.0.1:{port}/caf\ufffd?latin1", rows[2]


def test_control_bytes_escaped_binary_bytes_replaced(ctx):
    """A kept body of the bytes 0..255: ASCII as it is with controls (and DEL) escaped,
    each byte from 0x80 (none begins a UTF-8 sequence here) U+FFFD; the same in CSV."""
    want = "".join(chr(i) if i < 0x80 else "\ufffd" for i in range(256))
    url = ctx.nginx.url("/static/1k.bin")
    rc, out, err = run(ctx, ["-q", "--keep-body", "256", url])
    assert rc == 0, err
    line = out.rstrip(b"\n")
    assert b"\n" not in line and not re.search(rb"[\x00-\x1f\x7f]", line), line
    assert b'"body":"\\u0000\\u0001' in line and b"~\\u007f\xef\xbf\xbd" in line, line
    assert json.loads(line)["body"] == want
    rc, out, err = run(ctx, ["-q", "--format", "csv", "--keep-body", "256", url])
    assert rc == 0, err
    assert out.decode("utf-8").splitlines()[0] == CSV_HEADER + ",body"
    assert csv_rows(out)[0]["body"] == want


def test_row_fields_and_csv_columns(ctx):
    """JSONL gains line, addresses_tried, attempts, redirects (every old field stays); CSV
    the same columns after the old ones, and a body column with --keep-body (it used to
    drop the body without a word)."""
    a, b = ctx.nginx.url("/?f=1"), ctx.nginx.url("/?f=2")
    rc, out, err = run(ctx, ["-q", "-c", "1", a, "# no row", b, "bad url"])
    assert rc == 0, err
    rows = [json.loads(l) for l in out.decode().splitlines()]
    assert [list(r)[:len(JSONL_KEYS)] for r in rows] == [JSONL_KEYS] * 3, rows
    assert [(r["index"], r["line"], r["status"], r["addresses_tried"], r["attempts"],
             r["redirects"]) for r in rows] == [(0, 1, 200, 1, 1, 0), (1, 3, 200, 1, 1, 0),
                                                (2, 4, None, 0, 1, 0)], rows
    assert not {"final_url", "chain"} & set(rows[0]), rows[0]  # no redirect followed
    rc, out, err = run(ctx, ["-q", "-c", "1", "--format", "csv", "--keep-body", "64k", a,
                             "# no row", b, "bad url"])
    assert rc == 0, err
    assert out.decode().split("\n", 1)[0] == CSV_HEADER + ",body"
    got = [(r["index"], r["line"], r["status"], r["error"], r["addresses_tried"], r["attempts"],
            r["redirects"], r["final_url"], r["chain"], r["body"]) for r in csv_rows(out)]
    assert got == [("0", "1", "200", "", "1", "1", "0", "", "", "hello world\n"),
                   ("1", "3", "200", "", "1", "1", "0", "", "", "hello world\n"),
                   ("2", "4", "", "invalid_url", "0", "1", "0", "", "", "")], got


def test_bare_lf_answers(ctx):
    """badserver barelf: status and header lines end in a bare LF, which RFC 9112 2.2 lets
    a recipient accept. Chunk lines are not start or field lines: /chunked-lf, whose chunk
    lines end in a bare LF too, stays a protocol error (llhttp 8 frames chunks strictly)."""
    urls = [ctx.bad.url("barelf", p) for p in ("/", "/chunked", "/chunked-lf")]
    rc, out, err = run(ctx, ["-q", "--keep-body", "64"] + urls)
    assert rc == 0, err
    rows = [json.loads(l) for l in out.decode().splitlines()]
    assert [(r["url"], r["status"], r["error"], r["bytes"], r.get("body")) for r in rows[:2]] == [
        (u, 200, None, 12, "hello world\n") for u in urls[:2]], rows
    assert (rows[2]["status"], rows[2]["error"]) == (200, "protocol"), rows[2]


def strace_ops(path):
    """(syscall, fd, bytes) of the write and fsync lines of an strace -o file."""
    ops = []
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:\d+ +)?(write|fsync)\((\d+)(?:, .*)?\) += (-?\d+)", line)
            if m:
                ops.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return ops


def test_output_file_whole_rows_fsync_every(ctx):
    """-o FILE: every write() ends on a row boundary (a crash can tear the last row only),
    and with --fsync-every 100 an fsync follows rows 100, 200, ... and the end."""
    if not shutil.which("strace"):
        ctx.skip("strace is not installed")
    urls = os.path.join(ctx.tmpdir, "urls.txt")
    with open(urls, "w") as f:
        for i in range(1000):
            f.write(ctx.nginx.url(f"/?w={i}", i % 4) + ("\n" if i % 7 else "\n# c\n"))
    out = os.path.join(ctx.tmpdir, "rows.jsonl")
    trace = os.path.join(ctx.tmpdir, "trace")
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=write,fsync", "-o", trace,
                        ctx.ringfetch, "fetch", "-q", "-c", "50", "-i", urls, "-o", out,
                        "--fsync-every", "100"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and "ptrace" in r.stderr:
        ctx.skip("strace cannot trace here: " + r.stderr.strip()[-200:])
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as f:
        data = f.read()
    ends = {i + 1 for i, c in enumerate(data) if c == ord("\n")}  # where each row ends
    rows_at = {e: n for n, e in enumerate(sorted(ends), 1)}
    assert len(ends) == 1000
    ops = [op for op in strace_ops(trace) if op[1] > 2]  # the output file's descriptor
    fds = {fd for _, fd, _ in ops}
    assert len(fds) == 1, ops[:5]
    pos, synced = 0, []
    for call, _, n in ops:
        if call == "write":
            pos += n
            assert pos in ends, f"a write ended inside a row, at byte {pos}"
        else:
            synced.append(rows_at[pos])
    assert pos == len(data)
    assert synced == [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1000], synced


test_output_file_whole_rows_fsync_every.timeout = 90


def test_progress_line_never_glued_to_rows(ctx):
    """stdout and stderr on one terminal, input trickling in so the progress line is drawn
    between rows: every row starts its own line, the progress line cleared before it."""
    master, slave = pty.openpty()
    p = subprocess.Popen([ctx.ringfetch, "fetch", "-c", "4", "-i", "-"], stdin=subprocess.PIPE,
                         stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []

    def reader():
        for _ in range(100000):
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the terminal is gone
                break
            if not data:
                break
            chunks.append(data)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(40):
            p.stdin.write(ctx.nginx.url(f"/?tty={i}").encode() + b"\n")
            p.stdin.flush()
            time.sleep(0.03)
        p.stdin.close()
        p.wait(30)
    finally:
        p.kill()
        p.wait()
        t.join(10)
        os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert p.returncode == 0, text[-2000:]
    assert " in flight, " in text, text[-2000:]  # a progress line was drawn
    starts = [m.start() for m in re.finditer(r'\{"index":', text)]
    assert len(starts) == 40, text[-2000:]
    for s in starts:
        before = text[max(0, s - 4):s]
        assert s == 0 or before.endswith("\n") or before == "\r\x1b[K", repr(text[max(0, s - 80):s + 20])
    rows = [json.loads(l[l.index("{"):]) for l in text.replace("\r\n", "\n").split("\n")
            if '{"index"' in l]
    assert [r["index"] for r in rows] == list(range(40)), rows
