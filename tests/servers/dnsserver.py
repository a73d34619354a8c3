#!/usr/bin/python3
"""A small authoritative UDP DNS server for ringfetch's resolver tests: fixed A/AAAA records,
NXDOMAIN for every other name, or (--mode silent) no answer at all.

    dnsserver.py --port 0 --map web.test=127.0.0.1 --map v6.test=::1 [--mode silent]
                 [--ttl 60] [--log FILE] [--exit-on-stdin-eof]

A name may have several records: --map multi.test=127.0.0.2,127.0.0.1,::1 (or the same
name in several --map options) answers an A query with every IPv4 address and an AAAA
query with every IPv6 one, each in the order given. Names are matched without regard to
case, as the ASCII labels of the query; an internationalised name is given in punycode
(--map xn--bcher-kva.test=...) or in Unicode (--map bücher.test=..., stored as its
punycode), and is asked for as xn--bcher-kva.test, like any other name.

Once its socket is bound on 127.0.0.1 it prints one JSON line {"port": N} to stdout. Every
query received (answered or not) is appended to --log as one line "qname qtype", e.g.
"web.test A", flushed at once, so a test can count the queries a run sent.
"""
import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time

TYPE_A, TYPE_AAAA, TYPE_ANY = 1, 28, 255
CLASS_IN = 1
TYPE_NAMES = {TYPE_A: "A", TYPE_AAAA: "AAAA", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX",
              16: "TXT", 33: "SRV", TYPE_ANY: "ANY"}
RCODE_NOERROR, RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP = 0, 1, 3, 4
MAX_UDP = 512                     # RFC 1035 4.2.1: answers here are far smaller
MAX_LABELS = 128


class FormatError(Exception):
    pass


def parse_question(msg):
    """(qname lower-case without the final dot, qtype, qclass, end offset) of the first
    question. Names in queries are not compressed (RFC 1035 4.1.4 allows it only for
    repeats), so a pointer here is a format error."""
    if len(msg) < 12:
        raise FormatError("short header")
    off, labels = 12, []
    for _ in range(MAX_LABELS):
        if off >= len(msg):
            raise FormatError("name runs past the end")
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n & 0xc0:
            raise FormatError("compressed or extended label in a question")
        if off + n > len(msg):
            raise FormatError("label runs past the end")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    else:
        raise FormatError("too many labels")
    if off + 4 > len(msg):
        raise FormatError("question without type and class")
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    return ".".join(labels).lower(), qtype, qclass, off + 4


def type_name(qtype):
    return TYPE_NAMES.get(qtype, f"TYPE{qtype}")


def ascii_name(name):
    """name lower-case without the final dot, a Unicode one as its punycode (IDNA)."""
    name = name.rstrip(".")
    if not name.isascii():
        name = name.encode("idna").decode("ascii")
    return name.lower()


class Zone:
    """name -> list of (rtype, rdata) from --map name=addr[,addr...]."""

    def __init__(self, maps, ttl):
        self.ttl = ttl
        self.records = {}
        for item in maps:
            name, sep, addrs = item.partition("=")
            if not sep or not name or not addrs:
                raise ValueError(f"--map wants name=addr[,addr...]: {item!r}")
            try:
                key = ascii_name(name)
            except UnicodeError:
                raise ValueError(f"--map: {name!r} is no valid domain name")
            for addr in addrs.split(","):
                ip = ipaddress.ip_address(addr.strip().strip("[]"))
                rtype = TYPE_A if ip.version == 4 else TYPE_AAAA
                self.records.setdefault(key, []).append((rtype, ip.packed))

    def answer(self, query):
        """The response to one query message, or None when it deserves none."""
        if len(query) < 12:
            return None
        qid, flags, qdcount = struct.unpack_from("!HHH", query, 0)
        if flags & 0x8000:
            return None  # a response, not a query
        opcode = (flags >> 11) & 0xf
        rd = flags & 0x0100
        try:
            if qdcount != 1:
                raise FormatError("one question expected")
            qname, qtype, qclass, qend = parse_question(query)
        except FormatError:
            return self._header(qid, opcode, rd, RCODE_FORMERR, 0, 0)
        question = query[12:qend]
        if opcode != 0:
            return self._header(qid, opcode, rd, RCODE_NOTIMP, 1, 0) + question
        recs = self.records.get(qname)
        if recs is None or qclass != CLASS_IN:
            return self._header(qid, opcode, rd, RCODE_NXDOMAIN, 1, 0) + question
        answers = [(t, data) for t, data in recs if qtype in (t, TYPE_ANY)]
        out = [self._header(qid, opcode, rd, RCODE_NOERROR, 1, len(answers)), question]
        for rtype, data in answers:
            # 0xc00c: a pointer to the question's name, which starts at offset 12.
            out.append(struct.pack("!HHHIH", 0xc00c, rtype, CLASS_IN, self.ttl, len(data)))
            out.append(data)
        return b"".join(out)

    @staticmethod
    def _header(qid, opcode, rd, rcode, qd, an):
        flags = 0x8000 | opcode << 11 | 0x0400 | rd | rcode  # QR, AA; RA stays 0
        return struct.pack("!HHHHHH", qid, flags, qd, an, 0, 0)


def log_query(log, query):
    try:
        qname, qtype, _, _ = parse_question(query)
        line = f"{qname or '.'} {type_name(qtype)}\n"
    except FormatError as e:
        line = f"- malformed ({e})\n"
    if log is not None:
        log.write(line)
        log.flush()


def serve(sock, zone, silent, log, stop, deadline):
    for _ in range(1 << 40):
        left = deadline - time.monotonic()
        if stop.is_set() or left <= 0:
            return
        ready, _, _ = select.select([sock], [], [], min(left, 0.5))
        if not ready:
            continue
        try:
            query, peer = sock.recvfrom(4096)
        except (BlockingIOError, InterruptedError):
            continue
        log_query(log, query)
        if silent:
            continue
        reply = zone.answer(query)
        if reply is not None and len(reply) <= MAX_UDP:
            try:
                sock.sendto(reply, peer)
            except OSError:
                pass  # the client went away; nothing to tell it


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="UDP port on 127.0.0.1 (0: a free one)")
    ap.add_argument("--map", action="append", default=[], metavar="NAME=ADDR[,ADDR...]",
                    help="A (IPv4 ADDR) and AAAA (IPv6 ADDR) records, answered in the order "
                    "given; repeatable")
    ap.add_argument("--mode", choices=["answer", "silent"], default="answer",
                    help="silent: receive and log queries, never answer")
    ap.add_argument("--ttl", type=int, default=60, help="TTL of every answer (default 60)")
    ap.add_argument("--log", default=None, help="append 'qname qtype' per query to LOG")
    ap.add_argument("--lifetime", type=float, default=3600,
                    help="exit after this many seconds at the latest (default 1 h)")
    ap.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="exit when stdin reaches end of file")
    args = ap.parse_args()
    if not 0 <= args.ttl <= 0x7fffffff or args.lifetime <= 0:
        ap.error("bad --ttl or --lifetime")
    try:
        zone = Zone(args.map, args.ttl)
    except ValueError as e:
        ap.error(str(e))

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.exit_on_stdin_eof:
        def watch_stdin():
            for _ in range(1 << 30):
                try:
                    if not os.read(0, 4096):
                        break
                except OSError:
                    break
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    sock.setblocking(False)
    log = open(args.log, "a") if args.log else None
    try:
        print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
        serve(sock, zone, args.mode == "silent", log, stop,
              time.monotonic() + args.lifetime)
    finally:
        sock.close()
        if log is not None:
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
